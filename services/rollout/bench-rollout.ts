// `parley bench rollout`: the rollout pipeline (bus, workers, sandbox and scripted user over NATS-style
// request-reply) against a simulated continuous-batching backend, asynchronously and batch-synchronously
// in one invocation, with workers crashed on a schedule. Reports throughput efficiency, per-turn
// orchestration overhead and the exactly-once accounting of trajectories.

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { constants as perfConstants, monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { fromBinary } from '@bufbuild/protobuf';
import { connectBus, type Bus } from '../core/bus/index.js';
import { createBusClient, serveOverBus } from '../core/bus-rpc.js';
import { ParleyError } from '../core/errors.js';
import { createLocalClient } from '../core/local-client.js';
import { createLogger } from '../core/logger.js';
import { Registry } from '../core/metrics.js';
import { runSubjects } from '../core/run-subjects.js';
import { TrajectorySummarySchema, type TrajectorySummary } from '../core/gen/parley/v1/rollout_pb.js';
import { Sandbox } from '../core/gen/parley/v1/sandbox_pb.js';
import { UserSimulator } from '../core/gen/parley/v1/usersim_pb.js';
import { resolveSandboxConfig } from '../sandbox/config.js';
import { loadDomains, SandboxService } from '../sandbox/service.js';
import { UserSimulatorService, parseUserSimConfig } from '../usersim/index.js';
import { DEFAULT_EPISODE_OPTIONS } from './episode.js';
import type { EpisodePorts } from './ports.js';
import { deleteRunStreams, ensureRunStreams, publishGroup } from './publisher.js';
import { CapacityServer } from './sim/capacity-server.js';
import { SimulatedPolicy } from './sim/simulated-policy.js';
import { RolloutWorker } from './worker.js';

export interface RolloutBenchOptions {
  tasks: number;
  group: number;
  workers: number;
  concurrency: number;
  /** Crash a worker after every this many received trajectories (0 = never). */
  killWorkerEvery: number;
  out: string;
  dataDir: string;
  natsUrl?: string;
  capacityTokensPerS: number;
  maxSequenceTokensPerS: number;
  medianCompletionTokens: number;
  seed: number;
  /** Ack wait of the task consumer: how soon a crashed worker's task is redelivered. */
  ackWaitMs: number;
  /**
   * How workers reach the sandbox and the user simulator: 'bus' (request-reply over the bus, protobuf on
   * the wire; the default) or 'direct' (calls into the same process's service objects, no serialization).
   */
  transport?: 'bus' | 'direct';
  /** Also run the batch-synchronous baseline (default true). */
  syncBaseline?: boolean;
  /**
   * Run the sandbox and the user simulator as their own `parley serve sandbox|usersim --nats` processes
   * (the cluster's topology on one machine) instead of in the bench's process. Needs natsUrl.
   */
  actorProcesses?: boolean;
}

export interface PhaseReport {
  mode: 'async' | 'sync';
  tasks_published: number;
  trajectories_received: number;
  duplicates_dropped: number;
  lost: number;
  workers_killed: number;
  /** From the first task published to the last trajectory received. */
  wall_s: number;
  backend_capacity_tokens_per_s: number;
  /** Tokens the server decoded over wall_s (including work of episodes a crash threw away). */
  achieved_tokens_per_s: number;
  /** achieved / capacity over the whole run: ramp-up, crash redeliveries and the final drain included. */
  efficiency: number;
  /**
   * achieved / capacity from the start until the last episode began, i.e. while queued work could still
   * replace a finished episode; what follows is the drain (the last episodes finishing one by one), which
   * a run that keeps publishing tasks never reaches. A second view of the same run, not a replacement.
   */
  steady_state_efficiency: number;
  steady_state_s: number;
  /** Sampled tokens of the trajectories received (the useful work) / (capacity × wall_s). */
  goodput_efficiency: number;
  /** Share of wall_s the server had enough requests in flight to use its whole capacity. */
  server_saturated_fraction: number;
  /**
   * Orchestration time per policy turn: an episode's wall time (open session → evaluate → close) minus the
   * time the server spent generating its turns (arrival to last token, on the server's clock), divided by
   * its turns. It includes the sandbox, the user simulator, bus hops, the driver, and the lag from a
   * generation's last token to the episode resuming (the simulator's timer plus event-loop queueing).
   */
  p50_turn_overhead_ms: number;
  p99_turn_overhead_ms: number;
  /** Mean per turn over all turns, and what it is made of (the parts add up to the mean). */
  turn_overhead_mean_ms: number;
  turn_overhead_mean_breakdown_ms: { tool: number; user: number; policy_call: number; notify_lag: number; driver: number };
  /** Per episode, the worker's time outside the episode (task decode, trajectory encoding, publish, ack), mean ms. */
  worker_publish_ms_per_episode: number;
  /** CPU seconds of this process (all threads) per wall second: near the core count means CPU-bound. */
  process_cpu_per_wall_s: number;
  event_loop_delay_p50_ms: number;
  event_loop_delay_p99_ms: number;
  /** Young-generation collections (scavenges) during the run, and their total pause. */
  gc_scavenges: number;
  gc_scavenge_ms: number;
  /** Pauses of the other (mark-compact, incremental) collections. */
  gc_other_ms: number;
  /** The machine's 1-minute load average at the end (other processes share these cores). */
  load_average_1m: number;
  mean_reward: number;
}

/** What the bench keeps of a received trajectory. */
interface Received {
  reward: number;
  turns: number;
  sampled: number;
  timings: TrajectorySummary['timings'];
}

const LOOP_RESOLUTION_MS = 10;

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

async function histogramTotals(registry: Registry, name: string): Promise<{ sum: number; count: number }> {
  const m = registry.getSingleMetric(name);
  const values = m ? (await m.get()).values : [];
  const pick = (suffix: string) => values.filter((v) => (v as { metricName?: string }).metricName === `${name}_${suffix}`).reduce((a, v) => a + v.value, 0);
  return { sum: pick('sum'), count: pick('count') };
}

function pct(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

/**
 * The τ² data root for `dir`: the root itself (holding retail/), or the parent of a retail folder (holding
 * tasks.json and db.json). Throws naming both forms when it is neither.
 */
export function tau2Root(dir: string): string {
  if (existsSync(join(dir, 'retail', 'tasks.json'))) return dir;
  if (existsSync(join(dir, 'tasks.json')) && existsSync(join(dir, 'db.json')) && basename(dir) === 'retail') return dirname(dir);
  throw new Error(`--data-dir ${dir}: expected the τ² retail folder (tasks.json, db.json) or the data root holding retail/`);
}

/** Runs the asynchronous phase (and the batch-synchronous baseline) and writes DIR/report.json. `progress` gets one-line updates. */
export async function runRolloutBench(o: RolloutBenchOptions, progress: (line: string) => void = () => undefined) {
  o = { ...o, dataDir: tau2Root(o.dataDir) };
  const logger = createLogger('bench', process.env.PARLEY_LOG_LEVEL ?? 'warn');
  const registry = new Registry();
  const bus = await connectBus(o.natsUrl);
  const sbConfig = resolveSandboxConfig({ dataDir: o.dataDir, domains: ['retail'], metricsPort: -1, maxSessions: 1_000_000 });
  const domains = loadDomains(sbConfig);
  const retail = domains.get('retail')!;
  const sandbox = new SandboxService(sbConfig, domains, registry);
  const users = new UserSimulatorService({ config: parseUserSimConfig({ mode: 'scripted', maxConversations: 1_000_000 }), logger, registry });
  const taskIds = (retail.splits.train ?? [...retail.tasks.keys()]).filter((id) => retail.tasks.has(id));
  const transport = o.transport ?? 'bus';
  const phases: PhaseReport[] = [];
  const closers: (() => Promise<void>)[] = [];
  try {
    for (const mode of o.syncBaseline === false ? (['async'] as const) : (['async', 'sync'] as const)) {
      // A fresh run per invocation: a NATS server keeps a run's streams, durable consumers and (for two
      // minutes) its publish dedup ids, so reusing a name would find the tasks already published. The
      // streams are deleted afterwards there; the in-process bus goes with the process.
      const run = `bench-${mode}-${o.seed}-${Date.now().toString(36)}`;
      await ensureRunStreams(bus, run);
      if (o.natsUrl) closers.push(() => deleteRunStreams(bus, run));
      let clients: EpisodePorts['sandbox' | 'user'][];
      if (transport === 'direct') {
        clients = [createLocalClient(Sandbox, sandbox.impl), createLocalClient(UserSimulator, users)];
      } else if (o.actorProcesses) {
        if (!o.natsUrl) throw new Error('actorProcesses: needs a NATS URL (the processes reach each other through it)');
        clients = [createBusClient(bus, Sandbox, { run }), createBusClient(bus, UserSimulator, { run })];
        closers.push(await startActorProcesses(o.natsUrl, run, o.dataDir, clients as [EpisodePorts['sandbox'], EpisodePorts['user']], progress));
      } else {
        const servers = await Promise.all([serveOverBus(bus, Sandbox, sandbox.impl, { run }), serveOverBus(bus, UserSimulator, users as never, { run })]);
        closers.push(...servers.map((x) => () => x.close()));
        clients = [createBusClient(bus, Sandbox, { run }), createBusClient(bus, UserSimulator, { run })];
      }
      const [sb, us] = clients as [EpisodePorts['sandbox'], EpisodePorts['user']];
      phases.push(await runPhase(bus, mode, run, o, { sandbox: sb, user: us }, retail.tasks, taskIds, registry, logger, progress));
    }
  } finally {
    for (const c of closers) await c();
    sandbox.stop();
    users.close();
    await bus.close();
  }
  const [a, s] = phases as [PhaseReport, PhaseReport | undefined];
  const { mode: _async, ...asyncFigures } = a;
  const report = {
    ...asyncFigures,
    ...(s ? { async_over_sync_efficiency: a.efficiency / s.efficiency, baseline_sync: s } : {}),
    options: { ...o, bus: o.natsUrl ? 'nats' : 'memory', transport },
  };
  mkdirSync(o.out, { recursive: true });
  writeFileSync(join(o.out, 'report.json'), JSON.stringify(report, null, 2) + '\n');
  return report;
}

/**
 * Starts `parley serve sandbox` and `parley serve usersim` serving `run` over NATS, and resolves once both
 * answer over the bus. Resolves a function that stops them.
 */
async function startActorProcesses(
  natsUrl: string,
  run: string,
  dataDir: string,
  [sandbox, user]: [EpisodePorts['sandbox'], EpisodePorts['user']],
  progress: (line: string) => void,
): Promise<() => Promise<void>> {
  const cli = fileURLToPath(new URL('../../bin/parley.js', import.meta.url));
  const node = [process.execPath, '--max-semi-space-size=64', cli]; // as bin/parley.js's shebang runs it
  const common = ['--host', '127.0.0.1', '--port', '0', '--metrics-port', '-1', '--nats', natsUrl, '--run', run];
  const children = [
    spawn(node[0]!, [...node.slice(1), 'serve', 'sandbox', ...common, '--data-dir', dataDir, '--domains', 'retail', '--max-sessions', '1000000'], { stdio: ['ignore', 'ignore', 'pipe'] }),
    spawn(node[0]!, [...node.slice(1), 'serve', 'usersim', ...common, '--mode', 'scripted', '--max-conversations', '1000000'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, PARLEY_TAU2_DATA: dataDir },
    }),
  ];
  const stderr = children.map(() => '');
  children.forEach((c, i) => c.stderr!.on('data', (b: Buffer) => (stderr[i] = (stderr[i]! + b.toString()).slice(-4000))));
  const stop = async () => {
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((done) => {
            if (c.exitCode !== null || c.signalCode !== null) return done();
            c.once('exit', () => done());
            c.kill('SIGTERM');
          }),
      ),
    );
  };
  // Served once a call reaches a handler: any answer but 'unavailable' (no responders yet) will do.
  const answers = async (call: () => Promise<unknown>) =>
    call().then(
      () => true,
      (e: unknown) => !(e instanceof ParleyError && e.code === 'unavailable'),
    );
  const until = Date.now() + 120_000;
  progress('starting the sandbox and user-simulator processes');
  for (;;) {
    const dead = children.findIndex((c) => c.exitCode !== null);
    if (dead >= 0) {
      await stop();
      throw new Error(`actor process ${dead === 0 ? 'sandbox' : 'usersim'} exited with ${children[dead]!.exitCode}: ${stderr[dead]}`);
    }
    const ready = await Promise.all([
      answers(() => sandbox.listTasks({ domain: 'retail', split: '' }, { timeoutMs: 2000 })),
      answers(() => user.reply({ conversationId: 'bench-readiness-probe' }, { timeoutMs: 2000 })),
    ]);
    if (ready.every(Boolean)) return stop;
    if (Date.now() > until) {
      await stop();
      throw new Error(`actor processes did not answer over NATS within 120 s: ${stderr.join(' | ')}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function runPhase(
  bus: Bus,
  mode: 'async' | 'sync',
  run: string,
  o: RolloutBenchOptions,
  clients: Pick<EpisodePorts, 'sandbox' | 'user'>,
  tasks: Map<string, any>,
  taskIds: string[],
  registry: Registry,
  logger: ReturnType<typeof createLogger>,
  progress: (line: string) => void,
): Promise<PhaseReport> {
  const server = new CapacityServer({ capacityTokensPerS: o.capacityTokensPerS, maxSequenceTokensPerS: o.maxSequenceTokensPerS });
  const policy = new SimulatedPolicy({ server, tasks, medianCompletionTokens: o.medianCompletionTokens, sigma: 1.0, extraTurnProbability: 0.35, seed: o.seed });
  const ports = { policy, sandbox: clients.sandbox, user: clients.user };
  const s = runSubjects(run);
  const received = new Map<string, Received>();
  let duplicates = 0;
  let killed = 0;
  let workerSeq = 0;
  const workers: RolloutWorker[] = [];
  const newWorker = async () => {
    const w = new RolloutWorker(
      { run, name: `w${workerSeq++}`, concurrency: o.concurrency, ackWaitMs: o.ackWaitMs, maxDeliver: 20, drainTimeoutMs: 1000, episode: { ...DEFAULT_EPISODE_OPTIONS, maxContextTokens: 1_000_000 } },
      { bus, ports, logger, registry },
    );
    await w.start();
    return w;
  };
  for (let i = 0; i < o.workers; i++) workers.push(await newWorker());

  const consumer = await bus.consumer({ stream: s.trajectoriesStream, durable: 'bench', ackWaitMs: 30_000, maxDeliver: 10, maxAckPending: 10_000 });
  const stream = consumer.consume({ expiresMs: 1000, batch: 64 });
  let notify: () => void = () => undefined;
  const collector = (async () => {
    for await (const m of stream) {
      // The bench counts and scores: the summary view skips the token arrays a trainer would decode.
      const t = fromBinary(TrajectorySummarySchema, m.data, { readUnknownFields: false });
      const sampled = t.spans.reduce((n, s) => n + (s.role === 'assistant' ? s.end - s.start : 0), 0);
      if (received.has(t.id)) duplicates++;
      else received.set(t.id, { reward: t.reward, turns: t.turns, sampled, timings: t.timings });
      m.ack();
      notify();
    }
  })();
  const waitFor = async (pred: () => boolean, timeoutMs: number) => {
    const until = Date.now() + timeoutMs;
    while (!pred()) {
      if (Date.now() > until) return false;
      await new Promise<void>((r) => {
        notify = r;
        setTimeout(r, 200).unref();
      });
    }
    return true;
  };

  const expected: string[] = [];
  const groups = Array.from({ length: o.tasks }, (_, i) => ({ taskId: taskIds[i % taskIds.length]!, groupId: `g${i}` }));
  const publish = async (gs: typeof groups) => {
    for (const g of gs) {
      await publishGroup(bus, { run, domain: 'retail', taskId: g.taskId, groupId: g.groupId, groupSize: o.group, horizon: 30, minPolicyVersion: 0n, mode: 'mua', seed: BigInt(o.seed) });
      for (let k = 0; k < o.group; k++) expected.push(`${run}/${g.taskId}/${g.groupId}/${k}`);
    }
  };
  const episodeSeconds0 = await histogramTotals(registry, 'parley_rollout_episode_duration_seconds');
  const loopDelay = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  loopDelay.enable();
  const gc = { scavenges: 0, scavengeMs: 0, otherMs: 0 };
  const gcObserver = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      if ((e as { detail?: { kind?: number } }).detail?.kind === perfConstants.NODE_PERFORMANCE_GC_MINOR) {
        gc.scavenges++;
        gc.scavengeMs += e.duration;
      } else gc.otherMs += e.duration;
    }
  });
  gcObserver.observe({ entryTypes: ['gc'] });
  const cpu0 = process.cpuUsage();
  const started = performance.now();
  server.resetCounters();
  let nextKill = o.killWorkerEvery;
  let killing = Promise.resolve();
  const maybeKill = () => (killing = killing.then(killDue));
  const killDue = async () => {
    // No crash once everything arrived: its replacement would start after the workers were stopped.
    while (o.killWorkerEvery > 0 && received.size >= nextKill && received.size < expected.length) {
      nextKill += o.killWorkerEvery;
      const victim = workers.shift()!;
      victim.crash();
      killed++;
      workers.push(await newWorker());
    }
  };
  const tick = setInterval(() => progress(`${mode}: ${received.size}/${o.tasks * o.group} trajectories, ${killed} workers killed, ${(server.tokensDecoded / ((performance.now() - started) / 1000)).toFixed(0)} tok/s`), 2000);
  try {
    if (mode === 'async') {
      await publish(groups);
      await waitFor(() => {
        void maybeKill();
        return received.size >= expected.length;
      }, 30 * 60_000);
    } else {
      const perBatch = Math.max(1, Math.floor((o.workers * o.concurrency) / o.group));
      for (let i = 0; i < groups.length; i += perBatch) {
        await publish(groups.slice(i, i + perBatch));
        await waitFor(() => {
          void maybeKill();
          return received.size >= expected.length;
        }, 30 * 60_000);
      }
    }
  } finally {
    clearInterval(tick);
  }
  const wall = (performance.now() - started) / 1000;
  const tokens = server.tokensDecoded;
  const busy = server.busy;
  const cpu = process.cpuUsage(cpu0);
  loopDelay.disable();
  gcObserver.disconnect();
  await killing; // a replacement being started is stopped with the others
  await Promise.all(workers.map((w) => w.stop()));
  stream.stop();
  await collector.catch(() => undefined);
  const episodeSeconds1 = await histogramTotals(registry, 'parley_rollout_episode_duration_seconds');

  const overheads: number[] = [];
  const parts = { tool: 0, user: 0, policy_call: 0, notify_lag: 0, driver: 0 };
  let turns = 0;
  let useful = 0;
  for (const [id, t] of received) {
    useful += t.sampled;
    const keys = [...policy.backend.keys()].filter((k) => k.startsWith(`${id}#`));
    if (keys.length !== 1 || !t.timings || t.turns === 0) continue;
    const b = policy.backend.get(keys[0]!)!;
    const { totalMs, policyMs, userMs, toolMs } = t.timings;
    overheads.push(Math.max(0, totalMs - b.generationMs) / t.turns);
    parts.tool += toolMs;
    parts.user += userMs;
    parts.notify_lag += b.notifyLagMs;
    parts.policy_call += policyMs - b.generationMs - b.notifyLagMs;
    parts.driver += totalMs - policyMs - userMs - toolMs;
    turns += t.turns;
  }
  for (const k of Object.keys(parts) as (keyof typeof parts)[]) parts[k] /= Math.max(1, turns);
  // Steady state: up to the last episode's first turn (the queue still had work to start until then).
  const starts = policy.starts.filter((x) => x.at >= started);
  const last = starts[starts.length - 1];
  const steadyS = last ? (last.at - started) / 1000 : wall;
  const steadyTokens = last ? last.tokensDecoded : tokens;
  const lost = expected.filter((id) => !received.has(id)).length;
  const rewards = [...received.values()].map((t) => t.reward);
  const published = episodeSeconds1.count - episodeSeconds0.count;
  const episodeMs = [...received.values()].map((t) => t.timings?.totalMs ?? 0);
  progress(`${mode}: done in ${wall.toFixed(1)} s`);
  return {
    mode,
    tasks_published: expected.length,
    trajectories_received: received.size,
    duplicates_dropped: duplicates,
    lost,
    workers_killed: killed,
    wall_s: wall,
    backend_capacity_tokens_per_s: o.capacityTokensPerS,
    achieved_tokens_per_s: tokens / wall,
    efficiency: tokens / wall / o.capacityTokensPerS,
    steady_state_efficiency: steadyTokens / steadyS / o.capacityTokensPerS,
    steady_state_s: steadyS,
    goodput_efficiency: useful / wall / o.capacityTokensPerS,
    server_saturated_fraction: busy.saturatedMs / 1000 / wall,
    p50_turn_overhead_ms: pct(overheads, 50),
    p99_turn_overhead_ms: pct(overheads, 99),
    turn_overhead_mean_ms: Object.values(parts).reduce((a, b) => a + b, 0),
    turn_overhead_mean_breakdown_ms: parts,
    worker_publish_ms_per_episode: published > 0 ? ((episodeSeconds1.sum - episodeSeconds0.sum) * 1000) / published - mean(episodeMs) : NaN,
    process_cpu_per_wall_s: (cpu.user + cpu.system) / 1e6 / wall,
    // The histogram holds the intervals between ticks of a LOOP_RESOLUTION_MS timer: the delay is the excess.
    event_loop_delay_p50_ms: loopDelay.percentile(50) / 1e6 - LOOP_RESOLUTION_MS,
    event_loop_delay_p99_ms: loopDelay.percentile(99) / 1e6 - LOOP_RESOLUTION_MS,
    gc_scavenges: gc.scavenges,
    gc_scavenge_ms: gc.scavengeMs,
    gc_other_ms: gc.otherMs,
    load_average_1m: loadavg()[0]!,
    mean_reward: mean(rewards),
  };
}
