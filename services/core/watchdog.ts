// Children that die with their parent. A shell between the parent and the child keeps the parent's
// stdin pipe on fd 3 and sends the child SIGTERM when that pipe closes — on a clean stop, and also when
// the parent dies by SIGKILL, which would otherwise leave orphans (an engine holding a GPU, a pod's
// processes holding its ports) — then SIGKILL 30 s later if it is still there (a child stuck in a
// step or on a swapping machine does not get to outlive its parent).

/** `/bin/sh -c WATCHDOG <command> <args…>` with stdin a pipe the parent holds. */
export const WATCHDOG =
  'exec 3<&0; "$0" "$@" & child=$!; (read _ <&3; kill -TERM $child 2>/dev/null; sleep 30; kill -KILL $child 2>/dev/null) & watcher=$!; wait $child; code=$?; kill $watcher 2>/dev/null; exit $code';

/** The argv of /bin/sh that runs `command args` under the watchdog. */
export function watchdogArgs(command: string, args: string[]): string[] {
  return ['-c', WATCHDOG, command, ...args];
}
