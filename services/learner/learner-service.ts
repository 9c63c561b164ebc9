// The Learner gRPC service (Status, Checkpoint, Pause, Resume) over a running Learner.

import type { GenService, GenServiceMethods } from '@bufbuild/protobuf/codegenv2';
import type { ServiceImpl } from '../core/grpc.js';
import { Learner as LearnerService } from '../core/gen/parley/v1/learner_pb.js';
import type { Learner } from './learner.js';

type MethodsOf<S> = S extends GenService<infer M extends GenServiceMethods> ? M : never;

export { LearnerService };

/**
 * The service implementation. Pause and Resume fail with FAILED_PRECONDITION unless the learner is
 * running or paused; Checkpoint too, or with the file-system error as INTERNAL.
 */
export function learnerServiceImpl(learner: Learner): ServiceImpl<MethodsOf<typeof LearnerService>> {
  return {
    status() {
      const s = learner.status();
      return {
        step: BigInt(s.step),
        policyVersion: BigInt(s.policyVersion),
        state: s.state,
        trajectoriesConsumed: BigInt(s.consumed),
        trajectoriesDroppedStale: BigInt(s.droppedStale),
        groupsDroppedZeroVariance: BigInt(s.zeroVarianceGroups),
        lastRewardMean: s.rewardMean,
        horizon: s.horizon,
      };
    },
    async checkpoint() {
      const r = await learner.checkpoint();
      return { step: BigInt(r.step), path: r.path };
    },
    pause() {
      learner.pause();
      return {};
    },
    resume() {
      learner.resume();
      return {};
    },
  };
}
