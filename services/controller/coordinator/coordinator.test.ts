import { fromBinary } from '@bufbuild/protobuf';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { createMemoryBus, type Bus, type KvBucket } from '../../core/bus/index.js';
import { serveOverBus } from '../../core/bus-rpc.js';
import { ParleyError } from '../../core/errors.js';
import { createLogger } from '../../core/logger.js';
import { Registry } from '../../core/metrics.js';
import { runSubjects } from '../../core/run-subjects.js';
import { RolloutTaskSchema } from '../../core/gen/parley/v1/rollout_pb.js';
import { Sandbox } from '../../core/gen/parley/v1/sandbox_pb.js';
import type { LearnerRunState } from '../../learner/index.js';
import { resolveControllerConfig } from '../config.js';
import { checkRun } from '../spec-validation.js';
import { exampleRun } from '../testing/harness.js';
import { publishLearnerStarted } from '../testing/learner-started.js';
import { heldOutRequest } from '../../eval/index.js';
import { episodeOptions } from '../local/actors.js';
import { coordinatorConfig, heldOutSettings, resolveCoordinatorConfig } from './config.js';
import { Coordinator, type TaskLister } from './coordinator.js';
import { serveCoordinator } from './serve.js';

const RUN = 'coord-test';
const CONFIG = { run: RUN, domain: 'mock', groupSize: 2, groupsPerStep: 2, steps: 3, horizons: [4], seed: 5, pollIntervalMs: 50 };
const logger = createLogger('coordinator-test', 'silent');

let bus: Bus;
let state: KvBucket;
beforeEach(async () => {
  bus = createMemoryBus();
  state = await bus.kv(runSubjects(RUN).stateBucket, { history: 5 });
});
afterEach(() => bus.close());

const tasks: TaskLister = async () => ['a', 'b', 'c'];

async function learnerAt(step: number): Promise<void> {
  const s: LearnerRunState = { step, policyVersion: step, horizon: 4, horizonStage: 0, updatedAt: new Date().toISOString() };
  await state.put('learner', new TextEncoder().encode(JSON.stringify(s)));
}

async function until<T>(fn: () => T | Promise<T>, what: string, ms = 5000): Promise<NonNullable<T>> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Acks every queued task (a rollout worker that finishes at once); returns the group ids seen. */
async function worker() {
  const consumer = await bus.consumer({ stream: runSubjects(RUN).tasksStream, durable: 'w', ackWaitMs: 60_000, maxDeliver: 1, maxAckPending: 1000 });
  const groups = new Set<string>();
  const stream = consumer.consume({ expiresMs: 1000 });
  const loop = (async () => {
    for await (const m of stream) {
      groups.add(fromBinary(RolloutTaskSchema, m.data).groupId);
      m.ack();
    }
  })();
  return { groups, stop: async () => { stream.stop(); await loop; } };
}

describe('Coordinator', () => {
  it('publishes while the learner trains, stops at the run\'s steps, and a new one resumes the sequence', async () => {
    const a = new Coordinator(CONFIG, { bus, logger, registry: new Registry(), tasks });
    await a.start();
    expect(a.state).toBe('running');
    await until(async () => (await bus.streamInfo(runSubjects(RUN).tasksStream)).messages === 4, 'the first top-up');
    expect(a.status()).toMatchObject({ state: 'running', step: 0, nextGroup: 2, queued: 0 });
    const w = await worker();
    await learnerAt(1);
    await until(() => a.status().step === 1 && a.status().nextGroup > 4, 'more groups for step 1');
    await a.stop();
    await a.stop();
    expect(a.state).toBe('stopped');
    const stoppedAt = a.status().nextGroup;

    const b = new Coordinator(CONFIG, { bus, logger, registry: new Registry(), tasks });
    await b.start();
    await until(() => b.status().nextGroup > stoppedAt, 'the second coordinator publishing');
    await learnerAt(3);
    await until(() => b.state === 'finished', 'finished at step 3');
    const final = b.status().nextGroup;
    await new Promise((r) => setTimeout(r, 200));
    expect(b.status().nextGroup).toBe(final);
    await until(() => w.groups.size === final, 'every group consumed');
    await w.stop();
    expect([...w.groups].sort()).toEqual(Array.from({ length: final }, (_, i) => `g${i}`).sort());
    expect(JSON.parse(new TextDecoder().decode((await state.get('coordinator'))!.value)).nextGroup).toBe(final);
    await b.stop();
  });

  it('waits for a Sandbox that is not there yet, and fails naming the split when the tasks cannot be listed', async () => {
    let calls = 0;
    const late: TaskLister = async () => {
      if (++calls < 3) throw new ParleyError('unavailable', 'connection refused');
      return ['a'];
    };
    const c = new Coordinator(CONFIG, { bus, logger, registry: new Registry(), tasks: late, random: () => 0 });
    await c.start();
    expect(calls).toBe(3);
    await c.stop();

    const missing: TaskLister = async () => {
      throw new ParleyError('not_found', "split: no split 'train' (available: test)", { field: 'split' });
    };
    const d = new Coordinator(CONFIG, { bus, logger, registry: new Registry(), tasks: missing });
    await expect(d.start()).rejects.toMatchObject({ code: 'not_found', message: "cannot list the train tasks: split: no split 'train' (available: test)" });
    expect(d.state).toBe('stopped');
    const empty = new Coordinator(CONFIG, { bus, logger, registry: new Registry(), tasks: async () => [] });
    await expect(empty.start()).rejects.toMatchObject({ code: 'invalid_argument', message: expect.stringContaining("train split of domain 'mock' has no tasks") });
  });

  it('stop() during a start that waits for the Sandbox ends it', async () => {
    const never: TaskLister = async () => {
      throw new ParleyError('unavailable', 'no sandbox');
    };
    const c = new Coordinator(CONFIG, { bus, logger, registry: new Registry(), tasks: never });
    const started = c.start();
    await new Promise((r) => setTimeout(r, 50));
    await c.stop();
    await expect(started).rejects.toMatchObject({ code: 'cancelled' });
    expect(c.state).toBe('stopped');
  });
});

describe('coordinator config', () => {
  it('names the bad field', () => {
    expect(() => new Coordinator({ ...CONFIG, groupsPerStep: 0 }, { bus, logger, registry: new Registry(), tasks })).toThrow(/invalid coordinator config: groupsPerStep: /);
    expect(() => resolveCoordinatorConfig({ domain: 'mock' }, {})).toThrow(/invalid coordinator config: run: required: the TrainingRun name/);
    expect(() => resolveCoordinatorConfig({ run: RUN, domain: 'mock', groupSzie: 4 }, {})).toThrow(/Unrecognized key: "groupSzie"/);
    expect(() => resolveCoordinatorConfig({ run: RUN, domain: 'mock', metricsPort: '70000' }, {})).toThrow(/metricsPort: /);
    expect(() => resolveCoordinatorConfig({ run: RUN, domain: 'mock', steps: 'many' }, {})).toThrow(/steps: /);
  });

  it('a run asking for two coordinators is refused naming the field; a valid run renders coordinator.yaml', () => {
    const config = resolveControllerConfig({}, {});
    const bad = checkRun(exampleRun('cpu-small', (r) => ((r.spec.actors as Record<string, unknown>).coordinator = { replicas: 2 })), config);
    expect(bad).toMatchObject({ ok: false, reason: 'InvalidSpec', message: expect.stringContaining('spec.actors.coordinator.replicas: Too big') });
    const good = checkRun(exampleRun('tau2-airline'), config);
    if (!good.ok) throw new Error(good.message);
    expect(coordinatorConfig(parse(good.rendered.data['coordinator.yaml']!))).toEqual({
      run: 'tau2-airline',
      domain: 'airline',
      trainSplit: good.spec.data.trainSplit,
      groupSize: good.spec.algorithm.groupSize,
      groupsPerStep: good.spec.algorithm.groupsPerStep,
      steps: good.spec.algorithm.steps,
      horizons: good.spec.horizon.horizons,
      horizonEverySteps: good.spec.horizon.everySteps,
      mode: good.spec.rollout.mode,
      seed: good.spec.seed,
      pollIntervalMs: 1000,
      evaluation: {
        split: good.spec.data.evalSplit,
        ...(good.spec.data.tasksFile ? { taskFile: good.spec.data.tasksFile } : {}),
        k: good.spec.evaluation.k,
        maxTasks: good.spec.evaluation.maxTasks,
        everySteps: good.spec.evaluation.everySteps,
        beforeTrain: good.spec.evaluation.beforeTrain,
        concurrency: 128,
        maxSteps: good.spec.rollout.maxSteps,
        maxToolErrors: good.spec.rollout.maxToolErrors,
        maxContextTokens: good.spec.model.maxContextTokens,
        temperature: good.spec.rollout.temperature,
        topP: good.spec.rollout.topP,
        maxTokensPerTurn: good.spec.rollout.maxTokensPerTurn,
      },
    });
  });

  it("evaluates with the episode settings the local run's actors use", () => {
    const config = resolveControllerConfig({}, {});
    const good = checkRun(exampleRun('tau2-airline'), config);
    if (!good.ok) throw new Error(good.message);
    const c = coordinatorConfig(parse(good.rendered.data['coordinator.yaml']!));
    const request = heldOutRequest(heldOutSettings(c, c.evaluation!), { name: 'final', step: c.steps, policyVersion: 1, taskIds: [] });
    expect(request.episode).toEqual(episodeOptions(good.spec));
    expect(request).toMatchObject({ k: good.spec.evaluation.k, domain: 'airline', mode: good.spec.rollout.mode });
  });

  it('layers options over PARLEY_* variables', () => {
    const r = resolveCoordinatorConfig({ domain: 'retail', groupSize: '4' }, { PARLEY_RUN: 'from-env', PARLEY_BUS_URL: 'nats://nats:4222', PARLEY_METRICS_PORT: '9999' });
    expect(r.coordinator).toMatchObject({ run: 'from-env', domain: 'retail', groupSize: 4, groupsPerStep: 16, trainSplit: 'train' });
    expect(r.serve).toMatchObject({ busUrl: 'nats://nats:4222', metricsPort: 9999, sandbox: 'nats' });
  });
});

describe('serveCoordinator', () => {
  it('lists the tasks from the run\'s Sandbox over the bus and reports readiness and metrics', async () => {
    const unimplemented = () => {
      throw new ParleyError('unimplemented', 'not in this test');
    };
    const impl = Object.fromEntries(Sandbox.methods.map((m) => [m.localName, unimplemented]));
    impl.listTasks = ((req: { domain: string; split: string }) => {
      if (req.domain !== 'mock' || req.split !== 'train') throw new ParleyError('not_found', 'no such split');
      return { tasks: [{ id: 'x' }, { id: 'y' }] };
    }) as never;
    const sandbox = await serveOverBus(bus, Sandbox, impl as never, { run: RUN });
    const running = await serveCoordinator({ ...CONFIG, metricsPort: 0, host: '127.0.0.1' }, logger, { bus });
    try {
      const base = `http://127.0.0.1:${running.metrics!.port}`;
      expect((await fetch(`${base}/readyz`)).status).toBe(200);
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      // Nothing is published before the learner's first weights (no policy replica serves before them).
      await new Promise((r) => setTimeout(r, 1500));
      expect(running.coordinator.status().nextGroup).toBe(0);
      await publishLearnerStarted(bus, RUN);
      await until(async () => (await fetch(`${base}/metrics`).then((r) => r.text())).includes('parley_coordinator_groups_published_total 2'), 'metrics');
      const body = await fetch(`${base}/metrics`).then((r) => r.text());
      expect(body).toContain('parley_coordinator_queue_depth_messages');
      expect(body).toContain('parley_coordinator_next_group_number 2');
    } finally {
      await running.close();
      await running.close();
      await sandbox.close();
    }
    expect(running.coordinator.state).toBe('stopped');
  });
});
