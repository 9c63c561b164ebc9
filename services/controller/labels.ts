// Names, labels and owner references of the objects a TrainingRun owns: one place, so selectors,
// informers and the chart's PodMonitor agree.

import type { V1OwnerReference } from '@kubernetes/client-node';
import { API_VERSION, KIND, type TrainingRun } from './training-run.js';

/** The actor groups of a run, in the order they are created. */
export const GROUPS = ['sandbox', 'userSimulator', 'policy', 'learner', 'rollout', 'coordinator'] as const;
export type GroupName = (typeof GROUPS)[number];

/** Short object-name suffix and app.kubernetes.io/component of each group. */
export const GROUP_SUFFIX: Record<GroupName, string> = {
  sandbox: 'sandbox',
  userSimulator: 'usersim',
  policy: 'policy',
  learner: 'learner',
  rollout: 'rollout',
  coordinator: 'coordinator',
};

export const LABEL_RUN = 'parley.dev/run';
export const LABEL_GROUP = 'parley.dev/group';
export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 'parley-controller';
export const ANNOTATION_SPEC_HASH = 'parley.dev/spec-hash';
export const ANNOTATION_CONFIG_HASH = 'parley.dev/config-hash';

/** Longest run name: leaves room for "-usersim", StatefulSet pod ordinals and revision-hash labels. */
export const MAX_RUN_NAME = 40;

/** `<run>-<suffix>`: the Deployment/StatefulSet and headless Service of a group. */
export function groupObjectName(run: string, group: GroupName): string {
  return `${run}-${GROUP_SUFFIX[group]}`;
}

export function configMapName(run: string): string {
  return `${run}-config`;
}

/** Labels every object of the run carries. */
export function runLabels(run: string): Record<string, string> {
  return {
    'app.kubernetes.io/name': 'parley',
    'app.kubernetes.io/instance': run,
    'app.kubernetes.io/part-of': 'parley',
    [LABEL_MANAGED_BY]: MANAGED_BY,
    [LABEL_RUN]: run,
  };
}

/** The immutable selector of a group's pods. */
export function groupSelector(run: string, group: GroupName): Record<string, string> {
  return { [LABEL_RUN]: run, [LABEL_GROUP]: group };
}

export function groupLabels(run: string, group: GroupName): Record<string, string> {
  return { ...runLabels(run), ...groupSelector(run, group), 'app.kubernetes.io/component': GROUP_SUFFIX[group] };
}

/** `k=v,k=v` for list and watch calls. */
export function selectorString(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

/** The controller owner reference to the run (garbage collection deletes the object with the run). */
export function ownerReference(run: TrainingRun): V1OwnerReference {
  if (!run.metadata.uid) throw new Error(`TrainingRun ${run.metadata.name} has no uid; it must come from the API server`);
  return { apiVersion: API_VERSION, kind: KIND, name: run.metadata.name, uid: run.metadata.uid, controller: true, blockOwnerDeletion: true };
}

/** The run a labelled object belongs to, as a queue key, or undefined. */
export function runKeyOfObject(obj: { metadata?: { namespace?: string; labels?: Record<string, string> } }): string | undefined {
  const run = obj.metadata?.labels?.[LABEL_RUN];
  const ns = obj.metadata?.namespace;
  return run && ns ? `${ns}/${run}` : undefined;
}
