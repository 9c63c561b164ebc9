// A learner process for crash tests (test/learner-crash.test.ts): a real bus at PARLEY_TEST_BUS_URL,
// the Trainer double, and one JSON line on stdout per event the test may time a kill -9 on.

import { connectBus } from '../../core/bus/index.js';
import { createLogger } from '../../core/logger.js';
import { Registry } from '../../core/metrics.js';
import { Learner } from '../learner.js';
import { TrainerDouble } from './trainer-double.js';

const env = process.env;
const say = (event: Record<string, unknown>) => process.stdout.write(JSON.stringify(event) + '\n');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const fbDelayMs = Number(env.PARLEY_TEST_FB_DELAY_MS ?? 0);
const commitDelayMs = Number(env.PARLEY_TEST_COMMIT_DELAY_MS ?? 0);

const bus = await connectBus(env.PARLEY_TEST_BUS_URL);
const trainer = new TrainerDouble({
  beforeCall: async (method) => {
    if (method === 'forwardBackward' && fbDelayMs) await sleep(fbDelayMs);
  },
});
const holder: { learner?: Learner } = {};
const stepInFlight = () => (holder.learner?.status().step ?? 0) + 1;
const learner = new Learner(
  {
    run: env.PARLEY_TEST_RUN ?? 'crash',
    groupSize: Number(env.PARLEY_TEST_GROUP_SIZE ?? 4),
    groupsPerStep: Number(env.PARLEY_TEST_GROUPS_PER_STEP ?? 2),
    checkpointDir: env.PARLEY_TEST_CHECKPOINT_DIR!,
    maxStepsOffPolicy: 1000,
    microBatchTokens: 32,
    ackWaitMs: 2000,
  },
  {
    bus,
    trainer,
    logger: createLogger('crash-child', env.PARLEY_LOG_LEVEL ?? 'warn'),
    registry: new Registry(),
    hooks: { onPhase: (phase, index) => say({ event: 'phase', phase, index, step: stepInFlight() }) },
  },
);
holder.learner = learner;
const commit = learner.store.commit.bind(learner.store);
learner.store.commit = async (rec) => {
  say({ event: 'committing', step: rec.step, seq: rec.seq, kind: rec.kind });
  if (commitDelayMs && rec.kind === 'step') await sleep(commitDelayMs);
  return commit(rec);
};
process.once('SIGTERM', () => {
  void learner
    .stop()
    .then(() => bus.close())
    .then(() => process.exit(0));
});
await learner.start();
say({ event: 'started', step: learner.status().step, calls: trainer.calls });
try {
  for (let s = learner.status().step + 1; ; s++) {
    await learner.waitForStep(s, 24 * 3600_000);
    say({ event: 'committed', step: learner.status().step, consumed: learner.status().consumed });
  }
} catch {
  // stopped by SIGTERM: the handler above exits
}
