// Start-up: brings the engine to the latest committed checkpoint (and clears weights of steps that
// never committed), or runs the cold start when configured, saves the initial weights and writes
// checkpoint 0.

import { ParleyError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { CHECKPOINT_FORMAT, type CheckpointRecord, type CheckpointStore } from './checkpoint-store.js';
import { coldStart, type ColdStartRecord } from './cold-start.js';
import type { LearnerConfig } from './config.js';
import { emptyIds } from './ledger.js';
import type { TrainerClient } from './trainer-client.js';

/**
 * Initialises the engine, then restores or creates the checkpoint. Returns the latest record, the
 * engine's vocabulary size, and the records within the dedup window (oldest first). Rejects with
 * ParleyError: failed_precondition when the folder holds another run, data_loss for an unreadable
 * checkpoint, or the engine's error.
 */
export async function restoreOrInitialise(
  store: CheckpointStore,
  trainer: TrainerClient,
  c: LearnerConfig,
  log: Logger,
  now: number,
  onColdStart?: (r: ColdStartRecord) => void,
): Promise<{ latest: CheckpointRecord; vocabSize: number; window: CheckpointRecord[] }> {
  const rec = await store.latest();
  // A cold start runs (or is found done) only before checkpoint 0: the checkpoints hold everything after it.
  const cold = !rec && c.coldStart ? await coldStart(trainer, c, log) : undefined;
  if (cold) onColdStart?.(cold);
  const initialWeights = cold?.weightsPath ?? c.initialWeights;
  const info = await trainer.init({ model: c.model, configJson: c.engineConfigJson, seed: BigInt(c.seed) });
  if (rec) {
    if (rec.run !== c.run) throw new ParleyError('failed_precondition', `${store.dir} holds run '${rec.run}', not '${c.run}'; use another checkpointDir`);
    const removed = await store.removeUncommittedWeights(rec.policyVersion);
    await trainer.loadWeights({ path: rec.weightsPath });
    if (c.initialWeights || c.coldStart) {
      // The KL anchor is where RL began (checkpoint 0 holds those weights), not the resumed policy.
      const start = (await store.history(0)).find((r) => r.kind === 'init');
      await trainer.loadWeights({ path: start?.weightsPath ?? c.initialWeights, reference: true });
    }
    const window = await store.history(rec.seq - c.dedupWindowCheckpoints + 1);
    log.info({ step: rec.step, policyVersion: rec.policyVersion, seq: rec.seq, removedUncommitted: removed }, 'resumed from checkpoint');
    return { latest: rec, vocabSize: info.vocabSize, window };
  }
  await store.removeUncommittedWeights(-1);
  if (initialWeights) {
    await trainer.loadWeights({ path: initialWeights });
    // The KL term keeps the policy near where RL starts (e.g. the SFT result), not near Init's weights.
    await trainer.loadWeights({ path: initialWeights, reference: true });
    log.info({ initialWeights }, 'starting from the initial weights (policy and reference)');
  }
  const saved = await trainer.saveWeights({ path: store.weightsDir, version: 0n });
  const init: CheckpointRecord = {
    format: CHECKPOINT_FORMAT,
    run: c.run,
    seq: 0,
    kind: 'init',
    step: 0,
    policyVersion: 0,
    weightsPath: saved.path,
    horizonStage: 0,
    consumed: emptyIds(),
    totals: { consumed: 0, trained: 0, droppedStale: 0, zeroVarianceGroups: 0, incompleteGroups: 0 },
    rewardMean: 0,
    createdAt: new Date(now).toISOString(),
  };
  await store.commit(init);
  log.info({ weightsPath: saved.path }, 'initial checkpoint written');
  return { latest: init, vocabSize: info.vocabSize, window: [init] };
}
