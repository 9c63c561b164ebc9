// The address a server listens on. In a pod, the wildcard (0.0.0.0) means the pod's own network
// namespace; `parley run --pods` runs many pods on one machine and gives each a loopback address of its
// own (PARLEY_POD_IP), so a wildcard listener binds that address instead and pods never share a port.

/** Environment variable holding the emulated pod's address (set only by `parley run --pods`). */
export const POD_IP_ENV = 'PARLEY_POD_IP';

/** `host` (default the wildcard), with the wildcard narrowed to PARLEY_POD_IP when that is set. */
export function listenHost(host: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const h = host ?? '0.0.0.0';
  const pod = env[POD_IP_ENV];
  return (h === '0.0.0.0' || h === '::') && pod ? pod : h;
}
