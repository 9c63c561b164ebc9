// serveLearner over gRPC: Status, Pause, Resume and Checkpoint, /metrics, and config errors that
// name the field.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryBus, type Bus } from '../core/bus/index.js';
import { createBusClient } from '../core/bus-rpc.js';
import { createGrpcClient } from '../core/grpc.js';
import { createLogger } from '../core/logger.js';
import { resolveLearnerConfig } from './config.js';
import { LearnerService } from './learner-service.js';
import { serveLearner, type RunningLearner } from './serve.js';
import { TrainerDouble } from './testing/trainer-double.js';
import { makeGroups, publishTrajectories } from './testing/trajectories.js';

const logger = createLogger('serve-test', 'silent');
const learnerClient = (port: number) => createGrpcClient(LearnerService, `127.0.0.1:${port}`);

describe('serveLearner', () => {
  let dir: string;
  let bus: Bus;
  let running: RunningLearner;
  let client: ReturnType<typeof learnerClient>;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'parley-serve-learner-'));
    bus = createMemoryBus();
    running = await serveLearner(
      { run: 'svc', groupSize: 2, groupsPerStep: 1, checkpointDir: dir, port: 0, host: '127.0.0.1', metricsPort: 0, horizons: [10, 20], horizonEverySteps: 1 },
      logger,
      { bus, trainer: new TrainerDouble() },
    );
    client = learnerClient(running.grpc.port);
  });
  afterAll(async () => {
    client?.close();
    await running?.close();
    await running?.close();
    await bus?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves Status, Pause, Resume and Checkpoint', async () => {
    let s = await client.status({});
    expect(s).toMatchObject({ state: 'running', step: 0n, policyVersion: 0n, horizon: 10 });
    await client.pause({});
    expect((await client.status({})).state).toBe('paused');
    await publishTrajectories(bus, 'svc', makeGroups('svc', 1, 2));
    await client.resume({});
    await running.learner.waitForStep(1);
    s = await client.status({});
    expect(s).toMatchObject({ state: 'running', step: 1n, policyVersion: 1n, trajectoriesConsumed: 2n, lastRewardMean: 0.5, horizon: 20 });
    const ck = await client.checkpoint({});
    expect(ck.step).toBe(1n);
    expect(ck.path).toBe(running.learner.store.recordPath(1));
  });

  it('serves the same Learner over the run\'s bus', async () => {
    const overBus = createBusClient(bus, LearnerService, { run: 'svc', defaultTimeoutMs: 5000 });
    expect((await overBus.status({})).step).toBe((await client.status({})).step);
  });

  it('exports parley_learner_* metrics', async () => {
    const text = await (await fetch(`http://127.0.0.1:${running.metrics!.port}/metrics`)).text();
    for (const name of ['parley_learner_step_number', 'parley_learner_policy_version_number', 'parley_learner_trajectories_consumed_total', 'parley_learner_step_seconds_bucket', 'parley_learner_loss_value']) {
      expect(text).toContain(name);
    }
  });

  it('answers FAILED_PRECONDITION for Pause once stopped', async () => {
    await running.learner.stop();
    await expect(client.pause({})).rejects.toMatchObject({ code: 'failed_precondition' });
    expect((await client.status({})).state).toBe('stopped');
  });
});

describe('learner config', () => {
  it('fails naming the bad field and what is accepted', () => {
    expect(() => resolveLearnerConfig({ algorithm: 'ppo' }, {})).toThrow(/algorithm/);
    expect(() => resolveLearnerConfig({ run: 'a.b' }, {})).toThrow(/run: letters, digits/);
    expect(() => resolveLearnerConfig({ algorithm: 'rloo', minGroupSize: 1 }, {})).toThrow(/minGroupSize: rloo/);
    expect(() => resolveLearnerConfig({ groupsPerStep: 1000 }, {})).toThrow(/maxBufferedTrajectories/);
    expect(() => resolveLearnerConfig({ engineConfigJson: '[1]' }, {})).toThrow(/engineConfigJson/);
  });

  it('fills defaults, reads PARLEY_* variables and coerces flag strings', () => {
    const { learner, serve } = resolveLearnerConfig({ groupSize: '4', dropZeroVarianceGroups: 'false' }, { PARLEY_RUN: 'env-run', PARLEY_BUS_URL: 'nats://x:4222' });
    expect(learner).toMatchObject({ run: 'env-run', algorithm: 'grpo', groupSize: 4, dropZeroVarianceGroups: false, clipLow: 0.2, dualClip: 3, klCoef: 0.001, groupStd: 'sample' });
    expect(serve).toMatchObject({ busUrl: 'nats://x:4222', port: 50061, python: '/usr/bin/python3' });
  });
});
