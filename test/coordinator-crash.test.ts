// The run coordinator against a real nats-server: `parley serve coordinator` publishes while a simulated
// learner advances, is killed with SIGKILL mid-run and started again; the tasks that reached the queue
// are the seeded group sequence g0 … g<n-1>, every sample once (dedup drops the republished ones), no gaps.

import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fromBinary } from '@bufbuild/protobuf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectBus, type Bus, type KvBucket } from '../services/core/bus/index.js';
import { serveOverBus } from '../services/core/bus-rpc.js';
import { ParleyError } from '../services/core/errors.js';
import { runSubjects } from '../services/core/run-subjects.js';
import { deriveSeed } from '../services/core/seed.js';
import { RolloutTaskSchema } from '../services/core/gen/parley/v1/rollout_pb.js';
import { Sandbox } from '../services/core/gen/parley/v1/sandbox_pb.js';
import { plannedGroup } from '../services/controller/coordinator/index.js';
import { provisionRunStreams } from '../services/controller/nats-provision.js';
import { publishLearnerStarted } from '../services/controller/testing/learner-started.js';
import { createLogger } from '../services/core/logger.js';
import { haveNatsServer, startNatsServer, type NatsServer } from './fixtures/nats-server.js';

const repo = join(import.meta.dirname, '..');
const RUN = 'coord-crash';
const TASKS = Array.from({ length: 20 }, (_, i) => `task-${i}`);
const GROUP_SIZE = 4;
const STEPS = 4;
const SEED = 3;

function spawnCoordinator(natsUrl: string): ChildProcess {
  const child = spawn(
    process.execPath,
    [join(repo, 'bin', 'parley.js'), 'serve', 'coordinator', '--run', RUN, '--domain', 'mock', '--bus-url', natsUrl, '--sandbox', 'nats', '--metrics-port', '-1',
      '--group-size', String(GROUP_SIZE), '--groups-per-step', '3', '--steps', String(STEPS), '--seed', String(SEED), '--poll-interval-ms', '100'],
    { cwd: repo, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, PARLEY_LOG_LEVEL: 'warn' } },
  );
  child.stderr?.on('data', (d: Buffer) => {
    if (process.env.PARLEY_TEST_VERBOSE) process.stderr.write(`[coordinator] ${d}`);
  });
  return child;
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', () => r()));
}

async function waitUntil(pred: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('run coordinator crash safety (real nats-server)', () => {
  if (!haveNatsServer()) return;
  let nats: NatsServer;
  let bus: Bus;
  let state: KvBucket;
  const children: ChildProcess[] = [];
  const closers: (() => Promise<void> | void)[] = [];

  beforeAll(async () => {
    nats = await startNatsServer();
    bus = await connectBus(nats.url);
    await provisionRunStreams(bus, RUN, createLogger('test', 'silent'));
    state = await bus.kv(runSubjects(RUN).stateBucket, { history: 5 });
    // The learner has started (the coordinator publishes no task before its first weights).
    await publishLearnerStarted(bus, RUN);
    // The run's Sandbox as the coordinator sees it: ListTasks over request-reply (the rest is not used here).
    const impl: Record<string, (req: never) => Promise<unknown>> = Object.fromEntries(
      Sandbox.methods.map((m) => [m.localName, () => Promise.reject(new ParleyError('unimplemented', `${m.name} is not used`))]),
    );
    impl.listTasks = async (req: { domain: string; split: string }) =>
      req.domain === 'mock' && req.split === 'train' ? { tasks: TASKS.map((id) => ({ id })) } : Promise.reject(new ParleyError('not_found', 'unknown split'));
    const served = await serveOverBus(bus, Sandbox, impl as never, { run: RUN });
    closers.push(() => served.close());
  });
  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await Promise.all(children.map(exited));
    for (const c of closers.reverse()) await c();
    await bus?.close();
    await nats?.cleanup();
  });

  const learnerAt = (step: number) =>
    state.put('learner', new TextEncoder().encode(JSON.stringify({ step, policyVersion: step, horizon: 10, horizonStage: 0, updatedAt: new Date().toISOString() })));
  const counter = async () => {
    const e = await state.get('coordinator');
    return e ? (JSON.parse(new TextDecoder().decode(e.value)) as { nextGroup: number }).nextGroup : 0;
  };

  it('kill -9 mid-run: the queue saw g0 … g<n-1> of the seeded sequence, each sample once, none skipped', async () => {
    // Rollout workers: take every task, remember which stream sequences carried each trajectory id.
    const seqs = new Map<string, Set<number>>();
    const tasks = new Map<string, { taskId: string; seed: bigint; minPolicyVersion: bigint }>();
    const consumer = await bus.consumer({ stream: runSubjects(RUN).tasksStream, durable: 'workers', ackWaitMs: 30_000, maxDeliver: 5, maxAckPending: 1000 });
    const stream = consumer.consume({ expiresMs: 1000, batch: 16 });
    const loop = (async () => {
      for await (const m of stream) {
        const t = fromBinary(RolloutTaskSchema, m.data);
        const id = `${t.groupId}/${t.sampleIndex}`;
        if (!seqs.has(id)) seqs.set(id, new Set());
        seqs.get(id)!.add(m.seq);
        tasks.set(id, { taskId: t.taskId, seed: t.seed, minPolicyVersion: t.minPolicyVersion });
        m.ack();
      }
    })();
    const groupsSeen = () => new Set([...seqs.keys()].map((k) => k.split('/')[0])).size;

    const first = spawnCoordinator(nats.url);
    children.push(first);
    await waitUntil(() => groupsSeen() >= 6, 60_000, 'the first groups');
    await learnerAt(1);
    // Killed as soon as the top-up for version 1 shows up: usually while it is still publishing, often
    // after a group is stored and before its counter is saved (that group is then published again).
    await waitUntil(() => [...tasks.values()].some((t) => t.minPolicyVersion === 1n), 30_000, 'tasks for policy version 1');
    first.kill('SIGKILL');
    await exited(first);
    const atKill = await counter();
    const seenAtKill = groupsSeen();
    expect(atKill).toBeGreaterThan(0);

    const second = spawnCoordinator(nats.url);
    children.push(second);
    await waitUntil(async () => (await counter()) >= Math.max(atKill, seenAtKill) + 6, 60_000, 'the restarted coordinator publishing');
    await learnerAt(2);
    await learnerAt(STEPS);
    // Finished: the counter stops moving and every group below it reached the queue.
    let last = -1;
    await waitUntil(async () => {
      const n = await counter();
      const stable = n === last && groupsSeen() === n;
      last = n;
      await new Promise((r) => setTimeout(r, 300));
      return stable;
    }, 60_000, 'the coordinator to finish');
    second.kill('SIGTERM');
    await exited(second);
    expect(second.exitCode).toBe(0);
    stream.stop();
    await loop;

    const n = await counter();
    const expected = Array.from({ length: n }, (_, g) => Array.from({ length: GROUP_SIZE }, (_, i) => `g${g}/${i}`)).flat();
    expect([...seqs.keys()].sort()).toEqual(expected.sort());
    // After dedup every trajectory id was stored once (a republish after the kill was dropped).
    expect([...seqs.entries()].filter(([, s]) => s.size !== 1).map(([id]) => id)).toEqual([]);
    // The sequence was neither skipped nor restarted: group g is the g-th draw of the run's seed.
    for (let g = 0; g < n; g++) {
      const p = plannedGroup({ seed: SEED, taskIds: TASKS }, g);
      for (let i = 0; i < GROUP_SIZE; i++) expect(tasks.get(`g${g}/${i}`)).toMatchObject({ taskId: p.taskId, seed: deriveSeed(p.seed, `g${g}`, i) });
    }
  }, 180_000);
});
