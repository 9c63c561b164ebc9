// Forged and out-of-bounds trajectories against the learner, on the in-process bus and over a real
// nats-server: each is dead-lettered with its reason and acked, none is trained on, honest groups
// around them train, and a restarted learner does not see them again. The poison pill too: a
// trajectory only the engine refuses (INVALID_ARGUMENT) is found in the step, dead-lettered with the
// engine's message, and the step trains the rest.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clone, fromBinary } from '@bufbuild/protobuf';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { connectBus, createMemoryBus, type Bus } from '../services/core/bus/index.js';
import { TrajectorySchema, type Trajectory } from '../services/core/gen/parley/v1/rollout_pb.js';
import { createLogger } from '../services/core/logger.js';
import { Registry } from '../services/core/metrics.js';
import { runStreamConfigs } from '../services/core/run-subjects.js';
import { Learner, type LearnerConfigInput } from '../services/learner/index.js';
import { runStreams } from '../services/learner/run-bus.js';
import { readDeadLetters } from '../services/learner/testing/dead-letters.js';
import { TrainerDouble, fingerprint } from '../services/learner/testing/trainer-double.js';
import { makeGroups, makeTrajectory, publishTrajectories } from '../services/learner/testing/trajectories.js';
import { haveNatsServer, startNatsServer, type NatsServer } from './fixtures/nats-server.js';

const RUN = 'dl';
const logger = createLogger('learner-dead-letters-test', process.env.LOG ?? 'silent');

/** A deep copy of `t` under another id, alone in a group of that name, changed by `edit`. */
function variant(t: Trajectory, id: string, edit: (t: Trajectory) => void): Trajectory {
  const copy = clone(TrajectorySchema, t);
  copy.id = id;
  copy.task!.groupId = id;
  edit(copy);
  return copy;
}

async function dead(registry: Registry, reason: string): Promise<number> {
  const m = await registry.getSingleMetric('parley_learner_dead_letters_total')?.get();
  return m?.values.find((v) => v.labels.reason === reason)?.value ?? 0;
}

const have = haveNatsServer();
let server: NatsServer | undefined;
beforeAll(async () => {
  if (have) server = await startNatsServer();
});
afterAll(async () => {
  await server?.cleanup();
});

const buses: [string, () => Promise<Bus>][] = [['in-process bus', async () => createMemoryBus()]];
if (have) buses.push(['real nats-server', () => connectBus(server!.url)]);

describe.each(buses)('learner intake refusals on the %s', (_name, openBus) => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('dead-letters a forged group and out-of-bounds trajectories with reasons, trains the honest groups, and a restart does not see them again', async () => {
    const bus = await openBus();
    const run = `${RUN}${Math.floor(Math.random() * 1e6)}`;
    const dir = mkdtempSync(join(tmpdir(), 'parley-dead-letters-'));
    cleanups.push(async () => {
      for (const s of Object.values(runStreamConfigs(run))) await bus.deleteStream(s.name).catch(() => undefined);
      await bus.close();
      rmSync(dir, { recursive: true, force: true });
    });
    const config: LearnerConfigInput = { run, groupSize: 4, groupsPerStep: 1, checkpointDir: dir, microBatchTokens: 64, engineConfigJson: JSON.stringify({ max_len: 64 }) };
    const trainer = new TrainerDouble({ vocabSize: 1000 });
    const registry = new Registry();
    const learner = new Learner(config, { bus, trainer, logger, registry });
    cleanups.push(() => learner.stop());
    await learner.start();

    // The probe's forged group: a policy version from the future, rewards of ±1e30, log-probs of +40.
    const forged = makeGroups(run, 1, 4, { prefix: 'forged' }).map((t, i) => {
      t.policyVersions = [10n ** 12n];
      t.reward = i % 2 ? 1e30 : -1e30;
      t.logprobs = t.logprobs.map((x, k) => (t.lossMask[k] ? 40 : x));
      return t;
    });
    const base = makeTrajectory({ run, groupId: 'base', sampleIndex: 0, groupSize: 4, reward: 1 });
    const singles: Record<string, Trajectory> = {
      policy_version: variant(base, 'future', (t) => (t.policyVersions = [10n ** 12n])),
      logprobs_positive: variant(base, 'positive', (t) => (t.logprobs[t.logprobs.length - 1] = 40)),
      reward: variant(base, 'nan', (t) => (t.reward = Number.NaN)),
      reward_range: variant(base, 'huge', (t) => (t.reward = 1e30)),
      length: makeTrajectory({ run, groupId: 'long', sampleIndex: 0, groupSize: 4, reward: 1, length: 65 }),
      token_range: variant(base, 'token', (t) => (t.tokenIds[3] = 5000)),
      group_size: variant(base, 'wide', (t) => (t.task!.groupSize = 64)),
      sample_index: variant(base, 'index', (t) => (t.task!.sampleIndex = 4)),
    };
    const honest = makeGroups(run, 2, 4, { prefix: 'honest' });
    await publishTrajectories(bus, run, [...forged, ...Object.values(singles), ...honest.slice(0, 4)]);
    await bus.publish(`parley.${run}.trajectories`, new TextEncoder().encode('not a protobuf'), { msgId: 'garbage' });
    await learner.waitForStep(1);
    // A fifth member of the complete group honest0.
    const extra = variant(honest[0]!, `${honest[0]!.id}#extra`, (t) => {
      t.task!.groupId = 'honest0';
      t.tokenIds[0] = 950; // a sequence of its own
    });
    await publishTrajectories(bus, run, [extra, ...honest.slice(4)]);
    await learner.waitForStep(2);

    const trained = (await learner.store.history()).flatMap((r) => r.consumed.trained);
    expect(new Set(trained)).toEqual(new Set(honest.map((t) => t.id)));
    const sent = new Set(trainer.forwardBackwards.flatMap((r) => r.sequences.map((s) => fingerprint(s.tokenIds))));
    for (const t of [...forged, ...Object.values(singles), extra]) expect(sent.has(fingerprint(t.tokenIds))).toBe(false);

    await vi.waitFor(async () => expect((await bus.streamInfo(runStreams(run).trajectories)).messages).toBe(0));
    const letters = await readDeadLetters(bus, run);
    const byId = new Map(letters.map((l) => [l.trajectoryId, l]));
    for (const t of forged) expect(byId.get(t.id)?.reason).toBe('reward_range');
    for (const [reason, t] of Object.entries(singles)) {
      expect(byId.get(t.id)?.reason, t.id).toBe(reason);
      expect(fromBinary(TrajectorySchema, byId.get(t.id)!.data).id).toBe(t.id); // the original payload
    }
    expect(byId.get(extra.id)?.reason).toBe('group_overflow');
    expect(letters.find((l) => l.reason === 'decode')).toBeDefined();
    expect(letters).toHaveLength(forged.length + Object.keys(singles).length + 2);
    expect(byId.get(singles['length']!.id)?.detail).toContain('at most 64');
    expect(await dead(registry, 'reward_range')).toBe(5);
    expect(await dead(registry, 'policy_version')).toBe(1);
    expect(learner.status()).toMatchObject({ state: 'running', step: 2, droppedStale: 0 });

    // A restarted learner finds nothing of them left to deliver, and trains the next group.
    await learner.stop();
    const registry2 = new Registry();
    const again = new Learner(config, { bus, trainer: new TrainerDouble({ vocabSize: 1000 }), logger, registry: registry2 });
    cleanups.push(() => again.stop());
    await again.start();
    await publishTrajectories(bus, run, makeGroups(run, 1, 4, { prefix: 'later', policyVersion: 2 }));
    await again.waitForStep(3);
    expect(await readDeadLetters(bus, run)).toHaveLength(letters.length);
    expect((await registry2.getSingleMetric('parley_learner_dead_letters_total')?.get())?.values ?? []).toEqual([]);
  });

  it.each(['recompute', 'behaviour'] as const)('dead-letters a trajectory the engine refuses in a step (old log-probs: %s), trains the rest, and never sees it again after a restart', async (oldLogprobs) => {
    const bus = await openBus();
    const run = `${RUN}${Math.floor(Math.random() * 1e6)}`;
    const dir = mkdtempSync(join(tmpdir(), 'parley-poison-'));
    cleanups.push(async () => {
      for (const s of Object.values(runStreamConfigs(run))) await bus.deleteStream(s.name).catch(() => undefined);
      await bus.close();
      rmSync(dir, { recursive: true, force: true });
    });
    // A Hugging Face model without maxSequenceTokens: only the engine knows its limit.
    const config: LearnerConfigInput = { run, model: '/models/hf', groupSize: 4, groupsPerStep: 2, checkpointDir: dir, microBatchTokens: 200, oldLogprobs, maxStepAttempts: 1 };
    const trainer = new TrainerDouble({ maxLen: 64 });
    const registry = new Registry();
    const learner = new Learner(config, { bus, trainer, logger, registry });
    cleanups.push(() => learner.stop());
    const groups = makeGroups(run, 2, 4);
    const poison = makeTrajectory({ run, groupId: 'g1', sampleIndex: 2, groupSize: 4, reward: 0, length: 80 });
    groups[6] = poison;
    // Published before the learner starts, as a learner that stopped on it would find it again.
    await bus.ensureStream(runStreamConfigs(run).trajectories);
    await publishTrajectories(bus, run, groups);
    await learner.start();
    await learner.waitForStep(1);

    const step = (await learner.store.history()).find((r) => r.kind === 'step')!;
    expect(new Set(step.consumed.trained)).toEqual(new Set(groups.filter((t) => t !== poison).map((t) => t.id)));
    const letters = await readDeadLetters(bus, run);
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({ reason: 'engine_rejected', trajectoryId: poison.id });
    expect(letters[0]!.detail).toContain('at most 64');
    expect(await dead(registry, 'engine_rejected')).toBe(1);
    expect(learner.status()).toMatchObject({ state: 'running', step: 1 });
    await vi.waitFor(async () => expect((await bus.streamInfo(runStreams(run).trajectories)).messages).toBe(0));

    await learner.stop();
    const again = new Learner(config, { bus, trainer: new TrainerDouble({ maxLen: 64 }), logger, registry: new Registry() });
    cleanups.push(() => again.stop());
    await again.start();
    await publishTrajectories(bus, run, makeGroups(run, 2, 4, { prefix: 'later', policyVersion: 1 }));
    await again.waitForStep(2);
    expect(await readDeadLetters(bus, run)).toHaveLength(1);
  });
});
