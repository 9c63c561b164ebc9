// Status as a pure function of what the reconcile observed: phase, the five conditions with typed
// reasons (transition times kept while a status holds), actor groups, progress and metrics.

import type { ActorGroupStatus, Condition, ConditionReason, ConditionType, Phase, RunMetricsStatus, TrainingRunStatus } from './training-run.js';

export interface ObservedGroup extends ActorGroupStatus {
  /** -1 unlimited, 0 never, n at most n. */
  maxRestarts: number;
}

export interface Observed {
  generation: number;
  /** RFC 3339 time of this observation. */
  now: string;
  spec: { ok: true } | { ok: false; reason: 'InvalidSpec' | 'InvalidName'; message: string };
  /** Why the run's streams could not be provisioned, if they could not. */
  busError?: string;
  suspend: boolean;
  /** Learner steps the run asks for. */
  steps: number;
  groups: ObservedGroup[];
  progress?: { step: number; policyVersion: number; evaluatedStep?: number; metrics: RunMetricsStatus };
}

const FINAL: ReadonlySet<Phase | undefined> = new Set(['Succeeded', 'Failed']);

/** True once a run succeeded or failed; such runs keep their phase and their actors stay scaled to zero. */
export function isFinal(status: TrainingRunStatus | undefined): boolean {
  return FINAL.has(status?.phase);
}

/** Groups over their restart budget. */
export function exhaustedGroups(groups: ObservedGroup[]): ObservedGroup[] {
  return groups.filter((g) => g.maxRestarts >= 0 && g.restarts > g.maxRestarts);
}

/** Sets (or replaces) a condition; lastTransitionTime changes only when the status does. */
export function setCondition<T extends ConditionType>(
  conditions: Condition[],
  type: T,
  status: Condition['status'],
  reason: ConditionReason<T>,
  message: string,
  generation: number,
  now: string,
): Condition[] {
  const prev = conditions.find((c) => c.type === type);
  const next: Condition = { type, status, reason, message, observedGeneration: generation, lastTransitionTime: prev && prev.status === status ? prev.lastTransitionTime : now };
  return [...conditions.filter((c) => c.type !== type), next];
}

/** The condition of `type`, if set. */
export function getCondition(status: TrainingRunStatus | undefined, type: ConditionType): Condition | undefined {
  return status?.conditions?.find((c) => c.type === type);
}

function phaseOf(prev: TrainingRunStatus | undefined, o: Observed, allReady: boolean, failed: boolean, succeeded: boolean): Phase {
  if (isFinal(prev)) return prev!.phase!;
  if (!o.spec.ok) return 'Invalid';
  if (failed) return 'Failed';
  if (succeeded) return 'Succeeded';
  if (o.suspend) return 'Suspended';
  if (!o.busError && allReady) return 'Running';
  return 'Provisioning';
}

/** The status to write for observation `o` after `prev`. Never throws. */
export function computeStatus(prev: TrainingRunStatus | undefined, o: Observed): TrainingRunStatus {
  const g = o.generation;
  const step = Math.max(prev?.step ?? 0, o.progress?.step ?? 0);
  const exhausted = exhaustedGroups(o.groups);
  const failed = o.spec.ok && exhausted.length > 0;
  // Done once the learner committed the last step and the run coordinator published its final held-out
  // evaluation: scaling the actors to zero before would cut that evaluation off.
  const evaluated = Math.max(prev?.evaluatedStep ?? -1, o.progress?.evaluatedStep ?? -1);
  const succeeded = o.spec.ok && !failed && o.steps > 0 && step >= o.steps && evaluated >= o.steps;
  const allReady = o.groups.length > 0 && o.groups.every((x) => x.ready >= x.desired && x.desired > 0);
  const phase = phaseOf(prev, o, allReady, failed, succeeded);
  const final = phase === 'Succeeded' || phase === 'Failed';
  const backoff = o.groups.find((x) => x.nextRestartTime && x.nextRestartTime > o.now);
  const initFailed = o.groups.find((x) => x.initFailure);
  let c = prev?.conditions ?? [];

  c = o.spec.ok ? setCondition(c, 'SpecValid', 'True', 'Valid', 'the spec is valid', g, o.now) : setCondition(c, 'SpecValid', 'False', o.spec.reason, o.spec.message, g, o.now);

  if (final) c = setCondition(c, 'ActorsReady', 'False', 'Stopped', `the run ${phase === 'Failed' ? 'failed' : 'succeeded'}; actors are scaled to zero`, g, o.now);
  else if (o.suspend) c = setCondition(c, 'ActorsReady', 'False', 'Suspended', 'the run is suspended; actors are scaled to zero', g, o.now);
  else if (allReady) c = setCondition(c, 'ActorsReady', 'True', 'AllReady', o.groups.map((x) => `${x.group} ${x.ready}/${x.desired}`).join(', '), g, o.now);
  else if (initFailed) c = setCondition(c, 'ActorsReady', 'False', 'InitFailed', `${initFailed.group}: ${initFailed.initFailure}`, g, o.now);
  else if (backoff) c = setCondition(c, 'ActorsReady', 'False', 'RestartBackoff', `${backoff.group} restarts after ${backoff.nextRestartTime}`, g, o.now);
  else {
    const waiting = o.groups.filter((x) => x.ready < x.desired).map((x) => `${x.group} ${x.ready}/${x.desired}`).join(', ');
    const everReady = getCondition(prev, 'ActorsReady')?.reason === 'AllReady' || (prev?.step ?? 0) > 0;
    c = setCondition(c, 'ActorsReady', 'False', everReady ? 'NotReady' : 'Provisioning', `waiting for ${waiting || 'actors'}`, g, o.now);
  }

  if (!o.spec.ok) c = setCondition(c, 'Training', 'False', 'InvalidSpec', 'fix the spec to start training', g, o.now);
  else if (final) c = setCondition(c, 'Training', 'False', 'Finished', `finished at step ${step}`, g, o.now);
  else if (o.suspend) c = setCondition(c, 'Training', 'False', 'Suspended', `suspended at step ${step}`, g, o.now);
  else if (o.busError) c = setCondition(c, 'Training', 'False', 'BusUnavailable', o.busError, g, o.now);
  else if (phase === 'Running') c = setCondition(c, 'Training', 'True', 'Training', step >= o.steps && o.steps > 0 ? `step ${step} of ${o.steps}; final held-out evaluation running` : `step ${step} of ${o.steps}`, g, o.now);
  else c = setCondition(c, 'Training', 'False', 'WaitingForActors', 'training starts when every actor group is ready', g, o.now);

  const succeededNow = phase === 'Succeeded';
  c = succeededNow
    ? setCondition(c, 'Succeeded', 'True', 'StepsCompleted', `completed ${step} steps`, g, o.now)
    : setCondition(c, 'Succeeded', 'False', 'InProgress', `step ${step} of ${o.steps}`, g, o.now);
  const failedNow = phase === 'Failed';
  const failMsg = exhausted.map((x) => `${x.group} failed ${x.restarts} times (maxRestarts ${x.maxRestarts})`).join('; ');
  c = failedNow
    ? setCondition(c, 'Failed', 'True', 'RestartsExhausted', failMsg || getCondition(prev, 'Failed')?.message || 'restarts exhausted', g, o.now)
    : setCondition(c, 'Failed', 'False', 'NoFailure', 'no failure', g, o.now);

  const order: ConditionType[] = ['SpecValid', 'ActorsReady', 'Training', 'Succeeded', 'Failed'];
  c.sort((a, b) => order.indexOf(a.type) - order.indexOf(b.type));

  const status: TrainingRunStatus = {
    phase,
    observedGeneration: g,
    conditions: c,
    step,
    policyVersion: Math.max(prev?.policyVersion ?? 0, o.progress?.policyVersion ?? 0),
    ...(evaluated >= 0 ? { evaluatedStep: evaluated } : {}),
    actors: o.groups.map(({ maxRestarts: _m, ...rest }) => rest),
    message: c.find((x) => x.type === (final ? (failedNow ? 'Failed' : 'Succeeded') : phase === 'Invalid' ? 'SpecValid' : phase === 'Running' ? 'Training' : 'ActorsReady'))!.message,
  };
  const metrics = o.progress?.metrics ?? prev?.metrics;
  if (metrics && Object.keys(metrics).length) status.metrics = metrics;
  const started = prev?.startTime ?? (o.spec.ok ? o.now : undefined);
  if (started) status.startTime = started;
  const completed = prev?.completionTime ?? (final ? o.now : undefined);
  if (completed) status.completionTime = completed;
  return status;
}
