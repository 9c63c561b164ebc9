// The learner against a Trainer double on the in-process bus: steps advance, acks follow the
// checkpoint, duplicates and drops are counted once, failures retry or stop, restarts resume.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createMemoryBus, type Bus } from '../core/bus/index.js';
import { ParleyError } from '../core/errors.js';
import { createLogger } from '../core/logger.js';
import { Registry } from '../core/metrics.js';
import { CheckpointStore } from './checkpoint-store.js';
import type { LearnerConfigInput } from './config.js';
import { Learner } from './learner.js';
import { parseEvent, runStateBucket, runStreams, type StepCompletedEvent, type WeightsPublishedEvent } from './run-bus.js';
import { TrainerDouble, fingerprint, readDoubleWeights } from './testing/trainer-double.js';
import { makeGroups, makeTrajectory, publishTrajectories } from './testing/trajectories.js';

const RUN = 'unit';
const logger = createLogger('learner-test', process.env.LOG ?? 'silent');
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function setup(overrides: Partial<LearnerConfigInput> = {}, bus: Bus = createMemoryBus(), dir = mkdtempSync(join(tmpdir(), 'parley-learner-'))) {
  const trainer = new TrainerDouble();
  const config: LearnerConfigInput = { run: RUN, groupSize: 4, groupsPerStep: 2, checkpointDir: dir, microBatchTokens: 40, ...overrides };
  const learner = new Learner(config, { bus, trainer, logger, registry: new Registry() });
  cleanups.push(async () => {
    await learner.stop();
  });
  return { bus, trainer, learner, dir, store: new CheckpointStore(dir) };
}

function withDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'parley-learner-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function streamMessages(bus: Bus): Promise<number> {
  return (await bus.streamInfo(runStreams(RUN).trajectories)).messages;
}

describe('Learner on the in-process bus', () => {
  it('advances steps over whole groups and consumes every trajectory exactly once', async () => {
    const { bus, trainer, learner, store } = setup({}, createMemoryBus(), withDir());
    await learner.start();
    const trajs = makeGroups(RUN, 4, 4);
    await publishTrajectories(bus, RUN, trajs);
    await learner.waitForStep(2);
    const steps = (await store.history()).filter((r) => r.kind === 'step');
    expect(steps.map((r) => r.step)).toEqual([1, 2]);
    expect(steps.map((r) => r.policyVersion)).toEqual([1, 2]);
    const trained = steps.flatMap((r) => r.consumed.trained);
    expect(new Set(trained).size).toBe(16);
    expect(new Set(trained)).toEqual(new Set(trajs.map((t) => t.id)));
    // Whole groups per step: each step holds two complete groups of four.
    for (const r of steps) expect(new Set(r.consumed.trained.map((id) => id.split('/')[2])).size).toBe(2);
    expect(trainer.calls.filter((c) => c === 'optimStep')).toHaveLength(2);
    // The engine's saved weights carry exactly the sequences of each step, in order.
    const w = await readDoubleWeights(steps[1]!.weightsPath);
    const byId = new Map(trajs.map((t) => [t.id, fingerprint(t.tokenIds)]));
    expect(w.history).toEqual(steps.map((r) => r.consumed.trained.map((id) => byId.get(id)!).sort()));
    expect(learner.status()).toMatchObject({ state: 'running', step: 2, policyVersion: 2, consumed: 16 });
    await vi.waitFor(async () => expect(await streamMessages(bus)).toBe(0));
  });

  it('acks a step’s trajectories only after its checkpoint is committed', async () => {
    const { bus, trainer, learner } = setup({ groupsPerStep: 1 }, createMemoryBus(), withDir());
    await learner.start();
    const commit = vi.spyOn(learner.store, 'commit');
    let failedOnce = false;
    commit.mockImplementation(async function (this: CheckpointStore, rec) {
      // While the step commits, every one of its trajectories is still in the stream, unacked.
      expect(await streamMessages(bus)).toBe(4);
      if (!failedOnce) {
        failedOnce = true;
        throw new Error('disk full');
      }
      commit.mockRestore();
      return learner.store.commit(rec);
    });
    await publishTrajectories(bus, RUN, makeGroups(RUN, 1, 4));
    await learner.waitForStep(1);
    expect(failedOnce).toBe(true);
    await vi.waitFor(async () => expect(await streamMessages(bus)).toBe(0));
    // The failed attempt was rolled back: the engine reloaded v0, and the weights of v1 hold one update.
    expect(trainer.calls).toContain('loadWeights');
    expect((await readDoubleWeights(learner.latest!.weightsPath)).history).toHaveLength(1);
  });

  it('counts a duplicated trajectory once, before and after its step', async () => {
    const { bus, learner, store } = setup({ groupsPerStep: 1 }, createMemoryBus(), withDir());
    await learner.start();
    const [a, b, c, d] = makeGroups(RUN, 1, 4);
    // A second copy under another dedup id reaches the learner while the first is held...
    await publishTrajectories(bus, RUN, [a!, a!, b!, c!], (t) => `${t.id}#${Math.random()}`);
    await publishTrajectories(bus, RUN, [d!]);
    await learner.waitForStep(1);
    // ...and another after the step that consumed it committed.
    await publishTrajectories(bus, RUN, [b!], () => 'late-duplicate');
    await vi.waitFor(async () => expect(await streamMessages(bus)).toBe(0));
    const hist = await store.history();
    expect(hist.flatMap((r) => r.consumed.trained).sort()).toEqual([a!.id, b!.id, c!.id, d!.id].sort());
    expect(learner.status().consumed).toBe(4);
  });

  it('drops stale trajectories and zero-variance groups, counted once and acked at the next checkpoint', async () => {
    const { bus, learner, store } = setup({ groupsPerStep: 1, maxStepsOffPolicy: 0, dropZeroVarianceGroups: true }, createMemoryBus(), withDir());
    await learner.start();
    await publishTrajectories(bus, RUN, makeGroups(RUN, 1, 4, { prefix: 'fresh' }));
    await learner.waitForStep(1);
    // Policy version is now 1: version-0 samples are one step off-policy, over the bound of 0.
    const stale = makeGroups(RUN, 1, 4, { prefix: 'old', policyVersion: 0 });
    const flat = [0, 1, 2, 3].map((i) => makeTrajectory({ run: RUN, groupId: 'flat', sampleIndex: i, groupSize: 4, reward: 1, policyVersion: 1 }));
    await publishTrajectories(bus, RUN, [...stale, ...flat]);
    await vi.waitFor(() => expect(learner.status().buffered).toBe(8));
    expect(await streamMessages(bus)).toBe(8);
    const ck = await learner.checkpoint();
    expect(ck.step).toBe(1);
    expect(learner.status()).toMatchObject({ step: 1, consumed: 12, droppedStale: 4, zeroVarianceGroups: 1 });
    await vi.waitFor(async () => expect(await streamMessages(bus)).toBe(0));
    const last = (await store.latest())!;
    expect(last.kind).toBe('flush');
    expect(new Set(last.consumed.stale)).toEqual(new Set(stale.map((t) => t.id)));
    expect(new Set(last.consumed.zeroVariance)).toEqual(new Set(flat.map((t) => t.id)));
    // Delivered again (a crash of the server after the ack): recognised, not counted again.
    await publishTrajectories(bus, RUN, [stale[0]!], () => 'again');
    await vi.waitFor(async () => expect(await streamMessages(bus)).toBe(0));
    expect(learner.status()).toMatchObject({ consumed: 12, droppedStale: 4 });
  });

  it('resumes from the latest checkpoint with another learner on the same folder', async () => {
    const dir = withDir();
    const bus = createMemoryBus();
    const first = setup({ groupsPerStep: 1, maxStepsOffPolicy: 5 }, bus, dir);
    await first.learner.start();
    const trajs = makeGroups(RUN, 3, 4);
    await publishTrajectories(bus, RUN, trajs.slice(0, 4));
    await first.learner.waitForStep(1);
    await first.learner.stop();
    await first.learner.stop();
    expect(first.learner.state).toBe('stopped');
    const second = setup({ groupsPerStep: 1, maxStepsOffPolicy: 5 }, bus, dir);
    await second.learner.start();
    expect(second.trainer.calls.slice(0, 2)).toEqual(['init', 'loadWeights']);
    await publishTrajectories(bus, RUN, trajs.slice(4));
    await second.learner.waitForStep(3);
    const steps = (await second.store.history()).filter((r) => r.kind === 'step');
    expect(steps.map((r) => r.step)).toEqual([1, 2, 3]);
    expect(new Set(steps.flatMap((r) => r.consumed.trained))).toEqual(new Set(trajs.map((t) => t.id)));
    expect((await readDoubleWeights(steps[2]!.weightsPath)).history).toHaveLength(3);
  });

  it('starts no step after maxSteps, so the last weights are the last step’s', async () => {
    const { bus, learner, store } = setup({ groupsPerStep: 1, maxSteps: 1 }, createMemoryBus(), withDir());
    await learner.start();
    await publishTrajectories(bus, RUN, makeGroups(RUN, 3, 4));
    await learner.waitForStep(1);
    await new Promise((r) => setTimeout(r, 300));
    expect(learner.status().step).toBe(1);
    expect((await store.history()).filter((r) => r.kind === 'step')).toHaveLength(1);
  });

  it('anchors the KL reference at the initial weights, also after a resume', async () => {
    const dir = withDir();
    const source = new TrainerDouble();
    await source.init({ model: 'builtin' });
    const initial = (await source.saveWeights({ path: join(withDir(), 'sft'), version: 0n })).path;
    const bus = createMemoryBus();
    const first = setup({ groupsPerStep: 1, initialWeights: initial }, bus, dir);
    await first.learner.start();
    expect(first.trainer.referencePath).toBe(initial);
    await publishTrajectories(bus, RUN, makeGroups(RUN, 1, 4));
    await first.learner.waitForStep(1);
    await first.learner.stop();
    const second = setup({ groupsPerStep: 1, initialWeights: initial }, bus, dir);
    await second.learner.start();
    const start = (await second.store.history()).find((r) => r.kind === 'init')!;
    // Checkpoint 0 holds the initial weights; the resumed policy is step 1's, the reference stays at 0.
    expect(second.trainer.referencePath).toBe(start.weightsPath);
    expect(second.learner.status().step).toBe(1);
  });

  it('is an explicit state machine: start and stop twice, pause holds steps, resume releases them', async () => {
    const { bus, learner } = setup({ groupsPerStep: 1 }, createMemoryBus(), withDir());
    expect(learner.state).toBe('idle');
    await Promise.all([learner.start(), learner.start()]);
    expect(learner.state).toBe('running');
    learner.pause();
    expect(learner.state).toBe('paused');
    await publishTrajectories(bus, RUN, makeGroups(RUN, 1, 4));
    await vi.waitFor(() => expect(learner.status().buffered).toBe(4));
    await new Promise((r) => setTimeout(r, 50));
    expect(learner.status().step).toBe(0);
    learner.resume();
    await learner.waitForStep(1);
    await Promise.all([learner.stop(), learner.stop()]);
    expect(learner.state).toBe('stopped');
    await expect(learner.start()).rejects.toMatchObject({ code: 'failed_precondition' });
    expect(() => learner.pause()).toThrow(ParleyError);
  });

  it('retries retryable engine errors and stops on repeated non-retryable ones, acking nothing', async () => {
    const dir = withDir();
    const bus = createMemoryBus();
    let unavailable = 2;
    const trainer = new TrainerDouble({
      beforeCall: (m) => {
        if (m === 'forwardBackward' && unavailable-- > 0) throw new ParleyError('unavailable', 'engine restarting');
      },
    });
    const learner = new Learner({ run: RUN, groupSize: 4, groupsPerStep: 1, checkpointDir: dir }, { bus, trainer, logger, registry: new Registry() });
    cleanups.push(() => learner.stop());
    await learner.start();
    await publishTrajectories(bus, RUN, makeGroups(RUN, 1, 4));
    await learner.waitForStep(1);

    const bad = new TrainerDouble({ beforeCall: (m) => { if (m === 'optimStep') throw new ParleyError('invalid_argument', 'bad batch'); } });
    const dir2 = withDir();
    const bus2 = createMemoryBus();
    const l2 = new Learner({ run: RUN, groupSize: 4, groupsPerStep: 1, checkpointDir: dir2, maxStepAttempts: 2 }, { bus: bus2, trainer: bad, logger, registry: new Registry() });
    cleanups.push(() => l2.stop());
    await l2.start();
    await publishTrajectories(bus2, RUN, makeGroups(RUN, 1, 4));
    await expect(l2.waitForStep(1)).rejects.toMatchObject({ code: 'failed_precondition' });
    expect(l2.state).toBe('stopped');
    expect(l2.status().lastError).toContain('bad batch');
    expect(bad.calls.filter((c) => c === 'optimStep')).toHaveLength(2);
    expect(await (await bus2.streamInfo(runStreams(RUN).trajectories)).messages).toBe(4);
  });

  it('publishes weights_published and step_completed events', async () => {
    const { bus, learner } = setup({ groupsPerStep: 1 }, createMemoryBus(), withDir());
    await learner.start();
    await publishTrajectories(bus, RUN, makeGroups(RUN, 1, 4));
    await learner.waitForStep(1);
    const consumer = await bus.consumer({ stream: runStreams(RUN).events, durable: 'watch', ackWaitMs: 5000, maxDeliver: 1, maxAckPending: 100 });
    const seen: Record<string, unknown[]> = {};
    for (let i = 0; i < 3; i++) {
      const m = await consumer.next({ expiresMs: 1000 });
      if (!m) break;
      (seen[m.subject] ??= []).push(parseEvent(m.data));
      m.ack();
    }
    const weights = seen[`parley.${RUN}.events.weights_published`] as WeightsPublishedEvent[];
    expect(weights.map((w) => w.version)).toEqual([0, 1]);
    expect(weights[1]!.uri).toBe(learner.latest!.weightsPath);
    const steps = seen[`parley.${RUN}.events.step_completed`] as StepCompletedEvent[];
    expect(steps).toHaveLength(1);
    expect(steps[0]).toMatchObject({ step: 1, policyVersion: 1, trajectories: 4, rewardMean: 0.5, horizon: 0 });
    const kv = await bus.kv(runStateBucket(RUN));
    await vi.waitFor(async () => expect(JSON.parse(new TextDecoder().decode((await kv.get('learner'))!.value))).toMatchObject({ step: 1, policyVersion: 1 }));
  });

  it('publishes small weights through the object store under immutable versioned names', async () => {
    const { bus, learner } = setup({ groupsPerStep: 1, weightsTransport: 'object_store' }, createMemoryBus(), withDir());
    await learner.start();
    await publishTrajectories(bus, RUN, makeGroups(RUN, 1, 4));
    await learner.waitForStep(1);
    const store = await bus.objects(`parley-${RUN}-weights`);
    await vi.waitFor(async () => expect((await store.list()).map((o) => o.name).sort()).toEqual(['v00000000/.upload-complete', 'v00000000/double-weights.json', 'v00000001/.upload-complete', 'v00000001/double-weights.json']));
    const consumer = await bus.consumer({ stream: runStreams(RUN).events, durable: 'watch', ackWaitMs: 5000, maxDeliver: 1, maxAckPending: 100, filterSubject: `parley.${RUN}.events.weights_published` });
    const first = parseEvent<WeightsPublishedEvent>((await consumer.next({ expiresMs: 1000 }))!.data);
    expect(first).toMatchObject({ version: 0, transport: 'object_store', uri: `nats-object://parley-${RUN}-weights/v00000000/` });
  });
});
