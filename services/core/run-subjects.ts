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
  const token = run.replace(/-/g, '_');
  return {
    tasks: `parley.${run}.tasks`,
    tasksStream: `PARLEY_${token}_TASKS`,
    trajectories: `parley.${run}.trajectories`,
    trajectoriesStream: `PARLEY_${token}_TRAJECTORIES`,
    events: `parley.${run}.events`,
    event: (name: string) => `parley.${run}.events.${name}`,
    eventsStream: `PARLEY_${token}_EVENTS`,
    /** Actor calls over request-reply: parley.<run>.rpc.<Service>.<Method>. */
    rpc: (service: string, method: string) => `parley.${run}.rpc.${service}.${method}`,
    registryBucket: `parley_${token}_actors`,
    stateBucket: `parley_${token}_state`,
    weightsBucket: `parley_${token}_weights`,
  };
}

export type RunSubjects = ReturnType<typeof runSubjects>;
