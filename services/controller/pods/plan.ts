// The pods of a run, exactly as the controller renders them: the TrainingRun checked by the reconciler's
// first step (checkRun), its desired objects (desiredObjects: ConfigMap, Deployments, the learner
// StatefulSet, headless Services), each workload expanded into its replicas' pods with the names
// Kubernetes would give them. `parley run --pods` runs this plan as local processes.

import { randomUUID } from 'node:crypto';
import type { V1ConfigMap, V1PodSpec, V1Service } from '@kubernetes/client-node';
import { ParleyError } from '../../core/errors.js';
import { desiredObjects } from '../actor-workloads.js';
import type { ControllerConfig } from '../config.js';
import type { GroupName } from '../labels.js';
import { contentHash } from '../run-config.js';
import type { RunSpec } from '../run-spec.js';
import { checkRun } from '../spec-validation.js';
import { API_VERSION, KIND, type TrainingRun } from '../training-run.js';

export interface PlannedPod {
  name: string;
  group: GroupName;
  /** The workload (Deployment or StatefulSet) that owns it. */
  owner: string;
  spec: V1PodSpec;
  /** maxRestarts of the group (-1: unlimited). */
  maxRestarts: number;
}

export interface PodPlan {
  run: TrainingRun;
  spec: RunSpec;
  namespace: string;
  configMaps: Map<string, V1ConfigMap>;
  services: V1Service[];
  pods: PlannedPod[];
}

/**
 * A TrainingRun from a manifest (kind TrainingRun) or a bare run spec (its `name` becomes
 * metadata.name). Throws ParleyError(invalid_argument) for anything else.
 */
export function toTrainingRun(doc: unknown, namespace = 'default'): TrainingRun {
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new ParleyError('invalid_argument', 'the run file must hold a TrainingRun manifest or a run spec (a YAML mapping)');
  const d = doc as Record<string, unknown>;
  if (d.kind !== undefined && d.kind !== KIND) throw new ParleyError('invalid_argument', `kind: expected ${KIND} or a bare run spec, got '${String(d.kind)}'`, { field: 'kind' });
  const uid = randomUUID();
  if (d.kind === KIND) {
    const meta = (d.metadata ?? {}) as Record<string, unknown>;
    if (typeof meta.name !== 'string') throw new ParleyError('invalid_argument', 'metadata.name: required', { field: 'metadata.name' });
    return { apiVersion: API_VERSION, kind: KIND, metadata: { name: meta.name, namespace: (meta.namespace as string | undefined) ?? namespace, uid, generation: 1 }, spec: (d.spec ?? {}) as TrainingRun['spec'] };
  }
  const { name, ...spec } = d;
  if (typeof name !== 'string') throw new ParleyError('invalid_argument', 'name: a run spec needs a name (or use a TrainingRun manifest)', { field: 'name' });
  return { apiVersion: API_VERSION, kind: KIND, metadata: { name, namespace, uid, generation: 1 }, spec: spec as TrainingRun['spec'] };
}

/**
 * The run's pods. Throws ParleyError(invalid_argument) with the message the controller puts in the
 * SpecValid condition when the run is invalid.
 */
export function planPods(run: TrainingRun, config: ControllerConfig): PodPlan {
  const check = checkRun(run, config);
  if (!check.ok) throw new ParleyError('invalid_argument', `${check.reason}: ${check.message}`);
  const { spec, rendered } = check;
  const desired = desiredObjects(run, spec, config, rendered, { scaleToZero: false });
  const pods: PlannedPod[] = [];
  for (const w of desired.workloads) {
    const template = w.obj.spec!.template;
    const replicas = w.obj.spec!.replicas ?? 1;
    const name = w.obj.metadata!.name!;
    // Deployments name pods <name>-<pod-template-hash>-<suffix>; StatefulSets <name>-<ordinal>.
    const hash = contentHash(template).slice(0, 10);
    for (let i = 0; i < replicas; i++) {
      const podName = w.kind === 'StatefulSet' ? `${name}-${i}` : `${name}-${hash}-${i.toString(36).padStart(5, '0')}`;
      pods.push({ name: podName, group: w.group, owner: name, spec: structuredClone(template.spec!), maxRestarts: spec.actors[w.group].maxRestarts });
    }
  }
  return {
    run,
    spec,
    namespace: run.metadata.namespace ?? 'default',
    configMaps: new Map([[desired.configMap.metadata!.name!, desired.configMap]]),
    services: desired.services,
    pods,
  };
}
