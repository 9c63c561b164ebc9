import { fromBinary } from '@bufbuild/protobuf';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createMemoryBus, type Bus } from '../../core/bus/index.js';
import { Registry } from '../../core/metrics.js';
import { runSubjects } from '../../core/run-subjects.js';
import { RolloutTaskSchema, type RolloutTask } from '../../core/gen/parley/v1/rollout_pb.js';
import { ensureRunStreams } from '../../rollout/publisher.js';
import { KvGroupCounter, callbackGroupCounter, type GroupCounter } from './group-counter.js';
import { coordinatorMetrics } from './metrics.js';
import { TaskFeed } from './task-feed.js';
import { plannedGroup } from './task-sequence.js';
import { deriveSeed } from '../../core/seed.js';

const RUN = 'feed-test';
const TASKS = ['t1', 't2', 't3', 't4', 't5', 't6', 't7'];
const CONFIG = { run: RUN, domain: 'mock', groupSize: 3, groupsPerStep: 2, steps: 4, horizons: [5, 9], horizonEverySteps: 2, mode: 'mua' as const, seed: 11 };

let bus: Bus;
beforeEach(async () => {
  bus = createMemoryBus();
  await ensureRunStreams(bus, RUN);
});
afterEach(() => bus.close());

/** Takes every queued task off the queue (as rollout workers would), acking each. */
async function drain(): Promise<RolloutTask[]> {
  const consumer = await bus.consumer({ stream: runSubjects(RUN).tasksStream, durable: 'test-worker', ackWaitMs: 60_000, maxDeliver: 1, maxAckPending: 10_000 });
  const out: RolloutTask[] = [];
  while ((await consumer.info()).pending > 0) {
    const m = await consumer.next({ expiresMs: 1000 });
    if (!m) break;
    out.push(fromBinary(RolloutTaskSchema, m.data));
    m.ack();
  }
  return out;
}

function memoryCounter(): GroupCounter & { value: number } {
  const c = { value: 0 } as GroupCounter & { value: number };
  Object.assign(c, callbackGroupCounter(() => c.value, (n) => (c.value = n)));
  return c;
}

describe('TaskFeed', () => {
  it('tops the queue up with whole groups of the seeded sequence, stamped for the learner step', async () => {
    const registry = new Registry();
    const feed = new TaskFeed(CONFIG, TASKS, { bus, counter: memoryCounter(), metrics: coordinatorMetrics(registry) });
    expect(await feed.topUp({ step: 0, policyVersion: 0 })).toEqual({ published: 2, queued: 0, finished: false });
    // 6 queued = groupsPerStep × groupSize: full, nothing more.
    expect(await feed.topUp({ step: 0, policyVersion: 0 })).toEqual({ published: 0, queued: 6, finished: false });
    const first = await drain();
    expect(first.map((t) => `${t.groupId}/${t.sampleIndex}`)).toEqual(['g0/0', 'g0/1', 'g0/2', 'g1/0', 'g1/1', 'g1/2']);
    for (const t of first) {
      const p = plannedGroup({ seed: 11, taskIds: TASKS }, Number(t.groupId.slice(1)));
      expect(t).toMatchObject({ run: RUN, domain: 'mock', taskId: p.taskId, groupSize: 3, horizon: 5, minPolicyVersion: 0n, mode: 'mua', seed: deriveSeed(p.seed, t.groupId, t.sampleIndex) });
    }
    // Step 2 is the second horizon stage; the version is the learner's.
    await feed.topUp({ step: 2, policyVersion: 2 });
    const second = await drain();
    expect(new Set(second.map((t) => t.groupId))).toEqual(new Set(['g2', 'g3']));
    expect(second.every((t) => t.horizon === 9 && t.minPolicyVersion === 2n)).toBe(true);
    expect(feed.published).toBe(4);
    const metric = async (name: string) => (await registry.getSingleMetric(name)!.get()).values[0]?.value;
    expect(await metric('parley_coordinator_groups_published_total')).toBe(4);
    expect(await metric('parley_coordinator_next_group_number')).toBe(4);
    expect(await metric('parley_coordinator_horizon_turns')).toBe(9);
  });

  it('publishes nothing once the learner reached the run\'s steps', async () => {
    const feed = new TaskFeed(CONFIG, TASKS, { bus, counter: memoryCounter() });
    expect(await feed.topUp({ step: 4, policyVersion: 4 })).toEqual({ published: 0, queued: 0, finished: true });
    expect(await drain()).toEqual([]);
    const unlimited = new TaskFeed({ ...CONFIG, steps: 0 }, TASKS, { bus, counter: memoryCounter() });
    expect((await unlimited.topUp({ step: 10_000, policyVersion: 1 })).published).toBe(2);
  });

  it('after a crash between publishing and saving the counter, a new feed republishes the same ids (dropped) and goes on without a gap', async () => {
    const kv = await bus.kv(runSubjects(RUN).stateBucket);
    const counter = new KvGroupCounter(kv);
    let crash = false;
    const crashing: GroupCounter = {
      load: () => counter.load(),
      save: async (n) => {
        if (crash) throw new Error('killed');
        return counter.save(n);
      },
    };
    const registry = new Registry();
    const a = new TaskFeed(CONFIG, TASKS, { bus, counter: crashing });
    await a.topUp({ step: 0, policyVersion: 0 });
    const seen = await drain();
    crash = true; // g2 is published, then the process dies before its counter is saved
    await expect(a.topUp({ step: 1, policyVersion: 1 })).rejects.toThrow('killed');
    expect((await kv.get('coordinator')) && JSON.parse(new TextDecoder().decode((await kv.get('coordinator'))!.value)).nextGroup).toBe(2);

    const b = new TaskFeed(CONFIG, TASKS, { bus, counter: new KvGroupCounter(kv), metrics: coordinatorMetrics(registry) });
    expect(await b.load()).toBe(2);
    await b.topUp({ step: 1, policyVersion: 1 });
    expect(b.published).toBe(4);
    seen.push(...(await drain()));
    const ids = seen.map((t) => `${t.groupId}/${t.sampleIndex}`);
    expect(ids).toHaveLength(new Set(ids).size);
    expect(new Set(seen.map((t) => t.groupId))).toEqual(new Set(['g0', 'g1', 'g2', 'g3']));
    expect(ids).toHaveLength(4 * 3);
    expect((await registry.getSingleMetric('parley_coordinator_tasks_duplicate_total')!.get()).values[0]?.value).toBe(3);
  });

  it('never moves a shared counter backwards', async () => {
    const kv = await bus.kv(runSubjects(RUN).stateBucket);
    const a = new KvGroupCounter(kv);
    const b = new KvGroupCounter(kv);
    expect(await a.load()).toBe(0);
    expect(await b.load()).toBe(0);
    expect(await a.save(5)).toBe(5);
    // b's revision is stale: it takes a's value when that is further along, else writes its own.
    expect(await b.save(3)).toBe(5);
    expect(await b.save(8)).toBe(8);
    expect(await new KvGroupCounter(kv).load()).toBe(8);
    await kv.put('coordinator', new TextEncoder().encode('{"nextGroup":-1}'));
    await expect(new KvGroupCounter(kv).load()).rejects.toMatchObject({ code: 'data_loss', message: expect.stringContaining('nextGroup must be a non-negative integer') });
  });

  it('refuses a bad config or an empty task list, naming the field', () => {
    const counter = memoryCounter();
    expect(() => new TaskFeed({ ...CONFIG, groupSize: 0 }, TASKS, { bus, counter })).toThrow(/invalid coordinator config: groupSize: /);
    expect(() => new TaskFeed({ ...CONFIG, run: 'Not_A_Label' }, TASKS, { bus, counter })).toThrow(/run: must be a DNS-1123 label/);
    expect(() => new TaskFeed({ ...CONFIG, horizons: [] }, TASKS, { bus, counter })).toThrow(/horizons: must hold at least one horizon/);
    expect(() => new TaskFeed(CONFIG, [], { bus, counter })).toThrow(/taskIds: the train split of domain 'mock' has no tasks/);
  });
});
