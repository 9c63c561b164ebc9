// Names of a run's NATS subjects, streams, KV buckets and object stores (DESIGN §3), in one place.

const RUN_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** Throws when `run` is not a DNS-1123 label (the Kubernetes name of a TrainingRun). */
export function checkRunName(run: string): string {
  if (!RUN_NAME.test(run)) throw new Error(`run name '${run}' must be a DNS-1123 label: lower-case letters, digits and '-', at most 63 characters`);
  return run;
}

/** Subjects and stream names of one run. */
export function runSubjects(run: string) {
  checkRunName(run);
  return {
    tasks: `parley.${run}.tasks`,
    tasksStream: `parley-${run}-tasks`,
    trajectories: `parley.${run}.trajectories`,
    trajectoriesStream: `parley-${run}-trajectories`,
    events: `parley.${run}.events`,
    event: (name: string) => `parley.${run}.events.${name}`,
    eventsStream: `parley-${run}-events`,
    /** Trajectories the learner refused: the original payload with the reason in headers (DEAD_LETTER_HEADERS). */
    deadLetters: `parley.${run}.dead_letters`,
    deadLettersStream: `parley-${run}-dead-letters`,
    /** The learner's weights_published (WeightsPublishedEvent, core/weights-events.ts). */
    weightsPublished: `parley.${run}.events.weights_published`,
    /** Each policy replica's weights_loaded (WeightsLoadedEvent). */
    weightsLoaded: `parley.${run}.events.weights_loaded`,
    /** Actor calls over request-reply: parley.<run>.rpc.<Service>.<Method>. */
    rpc: (service: string, method: string) => `parley.${run}.rpc.${service}.${method}`,
    registryBucket: `parley-${run}-actors`,
    stateBucket: `parley-${run}-state`,
    weightsBucket: `parley-${run}-weights`,
  };
}

/**
 * The run's JetStream streams, as every component creates them (the same config from any side, so
 * whoever comes first creates and the rest find them): tasks and trajectories are work queues (a
 * message is gone once acked); events are kept a week; dead letters are kept a week for inspection,
 * at most 1 GiB of them (the oldest go first, so a flood of forged trajectories cannot fill the disk).
 */
export function runStreamConfigs(run: string) {
  const s = runSubjects(run);
  return {
    tasks: { name: s.tasksStream, subjects: [s.tasks], retention: 'workqueue' as const, duplicateWindowMs: 30 * 60_000 },
    trajectories: { name: s.trajectoriesStream, subjects: [s.trajectories], retention: 'workqueue' as const, duplicateWindowMs: 30 * 60_000 },
    events: { name: s.eventsStream, subjects: [`${s.events}.>`], retention: 'limits' as const, duplicateWindowMs: 10 * 60_000, maxAgeMs: WEEK_MS },
    deadLetters: {
      name: s.deadLettersStream,
      subjects: [s.deadLetters],
      retention: 'limits' as const,
      // A learner that crashed between dead-lettering and acking dead-letters again under the same msgId.
      duplicateWindowMs: 30 * 60_000,
      maxAgeMs: WEEK_MS,
      maxBytes: 1024 ** 3,
    },
  };
}

const WEEK_MS = 7 * 24 * 3600_000;

/**
 * Headers of a dead letter: why it was refused (a short code, the label of
 * parley_learner_dead_letters_total), a sentence, the trajectory's id when it could be read, and the
 * trajectory stream's sequence of the original.
 */
export const DEAD_LETTER_HEADERS = {
  reason: 'Parley-Dead-Letter-Reason',
  detail: 'Parley-Dead-Letter-Detail',
  trajectoryId: 'Parley-Trajectory-Id',
  sourceSeq: 'Parley-Source-Seq',
} as const;

export type RunSubjects = ReturnType<typeof runSubjects>;
