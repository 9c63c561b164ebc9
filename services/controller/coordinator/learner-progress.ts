// How far the learner is. In a cluster the learner writes its step and policy version to the run-state
// KV bucket after every committed step (services/learner/announce.ts); the coordinator reads that entry.

import type { KvBucket } from '../../core/bus/index.js';
import type { LearnerRunState } from '../../learner/index.js';

/** The learner's committed step and the version of the weights it published with it. */
export interface LearnerProgress {
  step: number;
  policyVersion: number;
}

/** The KV key the learner writes its run state under. */
export const LEARNER_STATE_KEY = 'learner';

/** Something that tells the learner's progress (the KV entry in a cluster, the in-process learner locally). */
export interface LearnerProgressSource {
  /** Rejects when the progress cannot be read (the caller retries). */
  current(): Promise<LearnerProgress>;
}

/**
 * Reads the learner's entry of the run-state bucket. No entry yet means the learner has not committed
 * a step (step 0, version 0). An entry that does not parse is logged by the caller through the
 * rejection and never taken for progress. Rejects with BusError when the bucket cannot be read.
 */
export function kvLearnerProgress(kv: KvBucket, key = LEARNER_STATE_KEY): LearnerProgressSource {
  return {
    async current() {
      const e = await kv.get(key);
      if (!e) return { step: 0, policyVersion: 0 };
      const s = JSON.parse(new TextDecoder().decode(e.value)) as Partial<LearnerRunState> | null;
      const step = s?.step;
      const version = s?.policyVersion;
      if (typeof step !== 'number' || typeof version !== 'number' || !(step >= 0) || !(version >= 0)) {
        throw new Error(`${kv.bucket}/${key}: not a learner run state (step and policyVersion must be non-negative numbers)`);
      }
      return { step, policyVersion: version };
    },
  };
}
