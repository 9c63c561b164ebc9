// `parley bench rollout`: the rollout pipeline (bus, workers, sandbox and scripted user over NATS-style
// request-reply) against a simulated continuous-batching backend, asynchronously and batch-synchronously
// in one invocation, with workers crashed on a schedule. Reports throughput efficiency, per-turn
// orchestration overhead and the exactly-once accounting of trajectories.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fromBinary } from '@bufbuild/protobuf';
import { connectBus, type Bus } from '../core/bus/index.js';
import { createBusClient, serveOverBus } from '../core/bus-rpc.js';
import { createLogger } from '../core/logger.js';
import { Registry } from '../core/metrics.js';
import { runSubjects } from '../core/run-subjects.js';
import { TrajectorySchema, type Trajectory } from '../core/gen/parley/v1/rollout_pb.js';
import { Sandbox } from '../core/gen/parley/v1/sandbox_pb.js';
import { UserSimulator } from '../core/gen/parley/v1/usersim_pb.js';
import { resolveSandboxConfig } from '../sandbox/config.js';
import { loadDomains, SandboxService } from '../sandbox/service.js';
import { UserSimulatorService, parseUserSimConfig } from '../usersim/index.js';
import { DEFAULT_EPISODE_OPTIONS } from './episode.js';
import { ensureRunStreams, publishGroup } from './publisher.js';
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
}

export interface PhaseReport {
  mode: 'async' | 'sync';
  tasks_published: number;
  trajectories_received: number;
  duplicates_dropped: number;
  lost: number;
  workers_killed: number;
  wall_s: number;
  backend_capacity_tokens_per_s: number;
  achieved_tokens_per_s: number;
  efficiency: number;
  p50_turn_overhead_ms: number;
  p99_turn_overhead_ms: number;
  mean_reward: number;
}

function pct(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

/** Runs both phases and writes DIR/report.json. `progress` gets one-line updates. */
export async function runRolloutBench(o: RolloutBenchOptions, progress: (line: string) => void = () => undefined) {
  const logger = createLogger('bench', process.env.PARLEY_LOG_LEVEL ?? 'warn');
  const registry = new Registry();
  const bus = await connectBus(o.natsUrl);
  const sbConfig = resolveSandboxConfig({ dataDir: o.dataDir, domains: ['retail'], metricsPort: -1, maxSessions: 1_000_000 });
  const domains = loadDomains(sbConfig);
  const retail = domains.get('retail')!;
  const sandbox = new SandboxService(sbConfig, domains, registry);
  const users = new UserSimulatorService({ config: parseUserSimConfig({ mode: 'scripted', maxConversations: 1_000_000 }), logger, registry });
  const taskIds = (retail.splits.train ?? [...retail.tasks.keys()]).filter((id) => retail.tasks.has(id));
  const phases: PhaseReport[] = [];
  const closers: (() => Promise<void>)[] = [];
  try {
    for (const mode of ['async', 'sync'] as const) {
      const run = `bench-${mode}-${o.seed}`;
      await ensureRunStreams(bus, run);
      closers.push(...(await Promise.all([serveOverBus(bus, Sandbox, sandbox.impl, { run }), serveOverBus(bus, UserSimulator, users as never, { run })])).map((s) => () => s.close()));
      phases.push(await runPhase(bus, mode, run, o, { sandbox: createBusClient(bus, Sandbox, { run }), user: createBusClient(bus, UserSimulator, { run }) }, retail.tasks, taskIds, registry, logger, progress));
    }
  } finally {
    for (const c of closers) await c();
    sandbox.stop();
    users.close();
    await bus.close();
  }
  const [a, s] = phases as [PhaseReport, PhaseReport];
  const report = {
    ...Object.fromEntries(Object.entries(a).filter(([k]) => k !== 'mode')),
    async_over_sync_efficiency: a.efficiency / s.efficiency,
    baseline_sync: s,
    options: { ...o, bus: o.natsUrl ? 'nats' : 'memory' },
  };
  mkdirSync(o.out, { recursive: true });
  writeFileSync(join(o.out, 'report.json'), JSON.stringify(report, null, 2) + '\n');
  return report;
}

async function runPhase(
  bus: Bus,
  mode: 'async' | 'sync',
  run: string,
  o: RolloutBenchOptions,
  clients: { sandbox: any; user: any },
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
  const received = new Map<string, Trajectory>();
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
      const t = fromBinary(TrajectorySchema, m.data);
      if (received.has(t.id)) duplicates++;
      else received.set(t.id, t);
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
  const started = performance.now();
  server.resetCounters();
  let nextKill = o.killWorkerEvery;
  const maybeKill = async () => {
    while (o.killWorkerEvery > 0 && received.size >= nextKill) {
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
  await Promise.all(workers.map((w) => w.stop()));
  stream.stop();
  await collector.catch(() => undefined);
  const overheads: number[] = [];
  for (const t of received.values()) {
    const keys = [...policy.backendSeconds.keys()].filter((k) => k.startsWith(`${t.id}#`));
    if (keys.length !== 1 || !t.timings || t.turns === 0) continue;
    const backendMs = policy.backendSeconds.get(keys[0]!)! * 1000;
    overheads.push(Math.max(0, t.timings.totalMs - backendMs) / t.turns);
  }
  const lost = expected.filter((id) => !received.has(id)).length;
  const rewards = [...received.values()].map((t) => t.reward);
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
    p50_turn_overhead_ms: pct(overheads, 50),
    p99_turn_overhead_ms: pct(overheads, 99),
    mean_reward: rewards.reduce((a, b) => a + b, 0) / Math.max(1, rewards.length),
  };
}
