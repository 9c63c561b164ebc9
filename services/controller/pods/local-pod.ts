// One rendered pod run as local processes, the way a kubelet would run it: volumes as folders (emptyDir
// per pod, a PersistentVolumeClaim shared by every pod that names it, ConfigMaps written as files), init
// containers one after another, then every container with its args and env as rendered (`$(VAR)`
// expanded, fieldRefs resolved), restarted with exponential backoff when it exits (restartPolicy
// Always), and deletion as SIGTERM, then SIGKILL after the grace period.
//
// A pod has a network namespace of its own; here each pod gets a loopback address of its own instead
// (127.a.b.x, a /24 chosen per run): `127.0.0.1`/`localhost` in its args and env mean that address, Parley's wildcard
// listeners bind it (PARLEY_POD_IP, see core/listen-host.ts), and Service DNS names resolve to the
// address of the first pod behind the Service. Mount paths in args, env and ConfigMap files are
// rewritten to the folders that stand in for the volumes.

import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, writeFileSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import type { V1ConfigMap, V1Container, V1EnvVar } from '@kubernetes/client-node';
import { ParleyError } from '../../core/errors.js';
import { POD_IP_ENV } from '../../core/listen-host.js';
import { watchdogArgs } from '../../core/watchdog.js';
import type { PlannedPod } from './plan.js';

/** How a container image runs on this machine: the command that stands for its entrypoint. */
export interface ImageCommand {
  command: string;
  /** Arguments before the container's args (the image's entrypoint). */
  entrypoint: string[];
  /** Environment the image itself sets (e.g. PYTHONPATH). */
  env?: Record<string, string>;
}

export interface PodEnvironment {
  /** Folder of this pod's files: volumes/, logs. */
  dir: string;
  /** Folder of shared PersistentVolumeClaims (<dir>/<claim>). */
  claimsDir: string;
  /** Claims bound to folders of this machine instead (`parley run --volume claim=DIR`), e.g. a model folder. */
  claimDirs?: Map<string, string>;
  podIp: string;
  namespace: string;
  configMaps: Map<string, V1ConfigMap>;
  /** Image → how to run it. Throws for an image it does not know. */
  image(image: string, where: string): ImageCommand;
  /** Host-name rewrites (Service DNS names → address), applied to args, env and ConfigMap files. */
  rewriteHosts(text: string): string;
  /** Restart backoff: base and cap (Kubernetes: 10 s and 300 s). */
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** Environment passed through from this process (PATH, OpenBLAS settings, …). */
  inheritedEnv: Record<string, string>;
}

export type PodPhase = 'Pending' | 'Initializing' | 'Running' | 'Failed' | 'Terminating' | 'Terminated';

interface RunningContainer {
  name: string;
  child?: ChildProcess;
  restarts: number;
  log: WriteStream;
  exited?: Promise<void>;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) killGroup(c, 'SIGKILL');
});

function killGroup(c: ChildProcess, signal: NodeJS.Signals): void {
  if (c.exitCode !== null || c.signalCode !== null || c.pid === undefined) return;
  try {
    process.kill(-c.pid, signal);
  } catch {
    c.kill(signal);
  }
}

/** `s` as a literal inside a regular expression. */
export const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

export class LocalPod {
  phase: PodPhase = 'Pending';
  /** Why the pod failed (an init container that never succeeded, an image that cannot run here). */
  failure?: string;
  private readonly containers: RunningContainer[] = [];
  /** Mount path → the folder standing in for its volume. */
  private readonly mountDirs = new Map<string, string>();
  private mountPattern?: RegExp;
  private stopping = false;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    readonly planned: PlannedPod,
    private readonly env: PodEnvironment,
  ) {}

  get name(): string {
    return this.planned.name;
  }

  /** Restarts of the pod's containers (init containers included), as `kubectl get pods` counts them. */
  get restarts(): number {
    return this.containers.reduce((n, c) => n + c.restarts, 0);
  }

  /** Main PIDs of the running containers. */
  pids(): number[] {
    return this.containers.flatMap((c) => (c.child?.pid !== undefined && c.child.exitCode === null ? [c.child.pid] : []));
  }

  /**
   * Prepares the volumes, runs the init containers to completion (each retried with backoff, as a kubelet
   * does), then starts the containers. Resolves once they are started. Rejects with ParleyError
   * (failed_precondition) when the pod cannot run here: an image without a local command, a missing
   * Secret or ConfigMap.
   */
  async start(): Promise<void> {
    const spec = this.planned.spec;
    this.prepareVolumes();
    // What cannot run here fails the pod before any process starts: an image without a local command, a Secret.
    for (const c of [...(spec.initContainers ?? []), ...spec.containers]) this.containerEnv(c, this.env.image(c.image ?? '', `${this.name}/${c.name}`));
    this.phase = 'Initializing';
    for (const c of spec.initContainers ?? []) {
      const rc = this.track(c);
      for (;;) {
        if (this.stopping) return;
        const code = await this.runOnce(c, rc);
        if (code === 0) break;
        if (this.stopping) return;
        rc.restarts++;
        await this.sleep(this.backoff(rc.restarts));
      }
    }
    if (this.stopping) return;
    for (const c of spec.containers) this.supervise(c, this.track(c));
    this.phase = 'Running';
  }

  /** SIGKILL every container process: a crash; the containers restart as after any exit. */
  kill(): void {
    for (const c of this.containers) if (c.child) killGroup(c.child, 'SIGKILL');
  }

  /** Deletes the pod: SIGTERM, then SIGKILL after `graceMs` (the pod's terminationGracePeriodSeconds by default). Safe to call twice. */
  async delete(graceMs = (this.planned.spec.terminationGracePeriodSeconds ?? 30) * 1000): Promise<void> {
    this.stopping = true;
    this.phase = 'Terminating';
    for (const t of this.timers) clearTimeout(t);
    const children = this.containers.flatMap((c) => (c.child ? [c.child] : []));
    for (const c of children) killGroup(c, 'SIGTERM');
    const deadline = setTimeout(() => children.forEach((c) => killGroup(c, 'SIGKILL')), graceMs);
    await Promise.all(this.containers.map((c) => c.exited));
    clearTimeout(deadline);
    for (const c of this.containers) c.log.end();
    this.phase = 'Terminated';
  }

  private track(c: V1Container): RunningContainer {
    const rc: RunningContainer = { name: c.name, restarts: 0, log: createWriteStream(join(this.env.dir, `${c.name}.log`), { flags: 'a' }) };
    this.containers.push(rc);
    return rc;
  }

  private backoff(restarts: number): number {
    return Math.min(this.env.backoffMaxMs, this.env.backoffBaseMs * 2 ** Math.max(0, restarts - 1));
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        resolve();
      }, ms);
      this.timers.add(t);
    });
  }

  private supervise(c: V1Container, rc: RunningContainer): void {
    const loop = async () => {
      while (!this.stopping) {
        const code = await this.runOnce(c, rc);
        if (this.stopping) return;
        rc.restarts++;
        rc.log.write(`\n--- container exited (${code}); restart ${rc.restarts} after backoff ---\n`);
        await this.sleep(this.backoff(rc.restarts));
      }
    };
    loop().catch((e: unknown) => {
      this.phase = 'Failed';
      this.failure = `${this.name}/${c.name}: ${(e as Error).message}`;
    });
  }

  /** Runs the container once; resolves its exit code (or 128+signal). */
  private runOnce(c: V1Container, rc: RunningContainer): Promise<number> {
    const image = this.env.image(c.image ?? '', `${this.name}/${c.name}`);
    const env = this.containerEnv(c, image);
    // Rewrite before expanding: the expanded values are rewritten already.
    const args = [...image.entrypoint, ...(c.command ?? []), ...(c.args ?? []).map((a) => expandVars(this.rewrite(a), env))];
    rc.log.write(`--- ${new Date().toISOString()} start: ${image.command} ${args.join(' ')}\n`);
    // Under the watchdog shell, so the pod's processes stop even if this process dies by SIGKILL.
    const child = spawn('/bin/sh', watchdogArgs(image.command, args), { env, stdio: ['pipe', 'pipe', 'pipe'], detached: true, cwd: this.env.dir });
    live.add(child);
    rc.child = child;
    child.stdout!.pipe(rc.log, { end: false });
    child.stderr!.pipe(rc.log, { end: false });
    const exited = new Promise<number>((resolve) => {
      child.once('error', (e) => {
        rc.log.write(`--- cannot start: ${e.message}\n`);
      });
      child.once('close', (code, signal) => {
        live.delete(child);
        resolve(code ?? 128 + (signal ? (({ SIGKILL: 9, SIGTERM: 15 }) as Record<string, number>)[signal] ?? 1 : 1));
      });
    });
    rc.exited = exited.then(() => undefined);
    return exited;
  }

  private containerEnv(c: V1Container, image: ImageCommand): Record<string, string> {
    const env: Record<string, string> = { ...this.env.inheritedEnv, ...(image.env ?? {}), [POD_IP_ENV]: this.env.podIp, HOSTNAME: this.name };
    // The pod's /tmp is its own (an emptyDir): scratch files such as downloaded weights never meet another pod's or run's.
    const tmp = this.mountDirs.get('/tmp');
    if (tmp) env.TMPDIR = tmp;
    for (const e of c.env ?? []) env[e.name] = expandVars(this.rewrite(this.envValue(e, `${this.name}/${c.name}`)), env);
    return env;
  }

  private envValue(e: V1EnvVar, where: string): string {
    if (e.value !== undefined) return e.value;
    const f = e.valueFrom?.fieldRef?.fieldPath;
    if (f === 'metadata.name') return this.name;
    if (f === 'metadata.namespace') return this.env.namespace;
    if (f === 'status.podIP') return this.env.podIp;
    if (e.valueFrom?.secretKeyRef) {
      throw new ParleyError('failed_precondition', `${where}: env ${e.name} reads Secret '${e.valueFrom.secretKeyRef.name}', which --pods does not have; set the value in the run spec's actor env for a rehearsal`);
    }
    return '';
  }

  /**
   * Rewrites mount paths to their folders, loopback and the wildcard address to the pod's address (a pod's
   * 0.0.0.0 is its own network namespace), Service names to addresses (each in one pass).
   */
  private rewrite(text: string): string {
    const out = this.env.rewriteHosts(text.replace(/\b(127\.0\.0\.1|localhost|0\.0\.0\.0)\b/g, this.env.podIp));
    if (!this.mountPattern) return out;
    return out.replace(this.mountPattern, (_m, lead: string, path: string) => lead + this.mountDirs.get(path)!);
  }

  private prepareVolumes(): void {
    const spec = this.planned.spec;
    const dirs = new Map<string, string>();
    for (const v of spec.volumes ?? []) {
      const claim = v.persistentVolumeClaim?.claimName;
      const dir = claim ? (this.env.claimDirs?.get(claim) ?? join(this.env.claimsDir, claim)) : join(this.env.dir, 'volumes', v.name);
      mkdirSync(dir, { recursive: true });
      dirs.set(v.name, dir);
    }
    // One mount table for the pod (every container here mounts a volume at the same path).
    for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
      for (const m of c.volumeMounts ?? []) {
        if (this.mountDirs.has(m.mountPath)) continue;
        const dir = dirs.get(m.name);
        if (!dir) throw new ParleyError('failed_precondition', `${this.name}/${c.name}: volumeMount '${m.name}' names no volume of the pod`);
        this.mountDirs.set(m.mountPath, dir);
      }
    }
    // Longest path first, so /data/x is not read as /data followed by /x.
    const paths = [...this.mountDirs.keys()].sort((a, b) => b.length - a.length);
    if (paths.length) this.mountPattern = new RegExp(`(^|[\\s='":,])(${paths.map(escapeRe).join('|')})(?=/|$|[\\s'":,])`, 'g');
    // ConfigMaps last: their files may name mount paths, which must read as this pod's folders.
    for (const v of spec.volumes ?? []) {
      if (!v.configMap) continue;
      const cm = this.env.configMaps.get(v.configMap.name ?? '');
      if (!cm) throw new ParleyError('failed_precondition', `${this.name}: volume '${v.name}' names ConfigMap '${v.configMap.name}', which the run does not have`);
      for (const [file, text] of Object.entries(cm.data ?? {})) writeFileSync(join(dirs.get(v.name)!, file), this.rewrite(text));
    }
  }
}

/** Kubernetes' `$(VAR)` expansion in args and env values: defined names are replaced, `$$(VAR)` escapes. */
export function expandVars(text: string, env: Record<string, string>): string {
  return text.replace(/\$\$\(|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, name: string | undefined) => (name === undefined ? '$(' : (env[name] ?? m)));
}
