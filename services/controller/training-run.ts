// The TrainingRun custom resource (parley.dev/v1alpha1): its identity, status shape, phases and the
// closed sets of condition types and reasons the controller writes.

import type { RunSpecInput } from './run-spec.js';

export const GROUP = 'parley.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
export const KIND = 'TrainingRun';
export const PLURAL = 'trainingruns';
export const SINGULAR = 'trainingrun';
/** Finalizer held until the run's NATS streams are deleted. */
export const FINALIZER = 'parley.dev/nats-streams';

export const PHASES = ['Pending', 'Invalid', 'Provisioning', 'Running', 'Suspended', 'Succeeded', 'Failed'] as const;
export type Phase = (typeof PHASES)[number];

/** Every condition type with its closed set of reasons. */
export const CONDITION_REASONS = {
  SpecValid: ['Valid', 'InvalidSpec', 'InvalidName'],
  ActorsReady: ['AllReady', 'Provisioning', 'NotReady', 'RestartBackoff', 'InitFailed', 'Suspended', 'Stopped'],
  Training: ['Training', 'WaitingForActors', 'BusUnavailable', 'Suspended', 'Finished', 'InvalidSpec'],
  Succeeded: ['StepsCompleted', 'InProgress'],
  Failed: ['NoFailure', 'RestartsExhausted'],
} as const;

export type ConditionType = keyof typeof CONDITION_REASONS;
export const CONDITION_TYPES = Object.keys(CONDITION_REASONS) as ConditionType[];
export type ConditionReason<T extends ConditionType = ConditionType> = (typeof CONDITION_REASONS)[T][number];

/** A Kubernetes-style condition (metav1.Condition). */
export interface Condition<T extends ConditionType = ConditionType> {
  type: T;
  status: 'True' | 'False' | 'Unknown';
  reason: ConditionReason<T>;
  message: string;
  /** RFC 3339; changes only when `status` changes. */
  lastTransitionTime: string;
  observedGeneration: number;
}

/** Latest run metrics, from the run's NATS events. */
export interface RunMetricsStatus {
  rewardMean?: number;
  /** Share of episodes with full reward (pass^1) in the latest step or evaluation. */
  passRate?: number;
  /** Episodes (trajectories) trained on so far. */
  episodes?: number;
  tokensPerSecond?: number;
  /** Mean policy-version lag of the latest step's trajectories. */
  stalenessMean?: number;
  /** Seconds from weights_published to the last policy actor's weights_loaded, for the latest version. */
  weightSyncSeconds?: number;
  /** When these values last changed (RFC 3339). */
  updatedAt?: string;
}

/** One actor group as the controller sees it. */
export interface ActorGroupStatus {
  /** policy, userSimulator, sandbox, rollout, learner or coordinator. */
  group: string;
  /** Replicas wanted now (0 while suspended or finished). */
  desired: number;
  ready: number;
  /** Failures counted against maxRestarts: container restarts of live pods plus pods the controller replaced. */
  restarts: number;
  /** Restarts of pods the controller deleted (their counters are gone with them). */
  retiredRestarts: number;
  lastFailureTime?: string;
  /** A failed pod is replaced no earlier than this (exponential backoff). */
  nextRestartTime?: string;
  /** Why a pod of the group cannot start: an init container that failed, with its message. */
  initFailure?: string;
}

export interface TrainingRunStatus {
  phase?: Phase;
  observedGeneration?: number;
  conditions?: Condition[];
  /** Learner steps completed. */
  step?: number;
  policyVersion?: number;
  /** The latest step whose held-out evaluation was published. */
  evaluatedStep?: number;
  metrics?: RunMetricsStatus;
  actors?: ActorGroupStatus[];
  startTime?: string;
  completionTime?: string;
  /** A human-readable summary of the phase. */
  message?: string;
}

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  finalizers?: string[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface TrainingRun {
  apiVersion: typeof API_VERSION;
  kind: typeof KIND;
  metadata: ObjectMeta;
  /** The run spec; `name` may be left out (it is the object's name). */
  spec: Omit<RunSpecInput, 'name'> & { name?: string };
  status?: TrainingRunStatus;
}

/** The work-queue key of a run: `<namespace>/<name>`. */
export function runKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

/** Splits a run key. Throws when it is not `<namespace>/<name>`. */
export function parseRunKey(key: string): { namespace: string; name: string } {
  const i = key.indexOf('/');
  if (i <= 0 || i === key.length - 1) throw new Error(`run key '${key}' must be <namespace>/<name>`);
  return { namespace: key.slice(0, i), name: key.slice(i + 1) };
}
