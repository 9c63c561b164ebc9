// The desired Kubernetes objects of a run: its ConfigMap, a Deployment per stateless actor group (the
// run coordinator's among them), the learner StatefulSet, headless Services, each labelled, hashed and
// owned by the TrainingRun.

import type { V1ConfigMap, V1Deployment, V1PodTemplateSpec, V1Service, V1StatefulSet, V1Toleration, V1Volume } from '@kubernetes/client-node';
import { PORTS, gpuCount, groupContainers } from './actor-containers.js';
import type { ControllerConfig } from './config.js';
import {
  ANNOTATION_CONFIG_HASH,
  ANNOTATION_SPEC_HASH,
  GROUPS,
  configMapName,
  groupLabels,
  groupObjectName,
  groupSelector,
  ownerReference,
  runLabels,
  type GroupName,
} from './labels.js';
import { podSecurityContext, scratchVolumes } from './pod-security.js';
import { contentHash, type RenderedRunConfig } from './run-config.js';
import type { RunSpec } from './run-spec.js';
import type { TrainingRun } from './training-run.js';

export type Workload = { group: GroupName; kind: 'Deployment'; obj: V1Deployment } | { group: GroupName; kind: 'StatefulSet'; obj: V1StatefulSet };

export interface DesiredObjects {
  configMap: V1ConfigMap;
  workloads: Workload[];
  services: V1Service[];
}

/** Groups reached by gRPC get a headless Service (DNS names every pod); the learner's also names its StatefulSet pods. */
const SERVICE_PORTS: Partial<Record<GroupName, number>> = {
  sandbox: PORTS.grpc,
  userSimulator: PORTS.usersimGrpc,
  policy: PORTS.grpc,
  learner: PORTS.learnerGrpc,
};

/** Sets the spec-hash annotation the apply step compares instead of diffing server-defaulted fields. */
export function withSpecHash<T extends { metadata?: { annotations?: { [key: string]: string } } }>(obj: T, hashed: unknown): T {
  obj.metadata!.annotations = { ...(obj.metadata!.annotations ?? {}), [ANNOTATION_SPEC_HASH]: contentHash(hashed) };
  return obj;
}

function podTemplate(group: GroupName, spec: RunSpec, config: ControllerConfig, configHash: string): V1PodTemplateSpec {
  const g = spec.actors[group];
  const { containers, initContainers, volumes: own = [], gpuCaches, data } = groupContainers(group, spec, config);
  const volumes: V1Volume[] = [...scratchVolumes(gpuCaches), { name: 'run-config', configMap: { name: configMapName(spec.name) } }, ...own];
  if (data) volumes.push(config.sharedVolumeClaim ? { name: 'data', persistentVolumeClaim: { claimName: config.sharedVolumeClaim } } : { name: 'data', emptyDir: {} });
  const tolerations: V1Toleration[] = g.placement.tolerations.map((t) => ({ ...t }));
  if (gpuCount(g) > 0 && !tolerations.some((t) => t.key === 'nvidia.com/gpu')) tolerations.push({ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' });
  return {
    metadata: { labels: groupLabels(spec.name, group), annotations: { [ANNOTATION_CONFIG_HASH]: configHash } },
    spec: {
      ...(initContainers ? { initContainers } : {}),
      containers,
      volumes,
      securityContext: podSecurityContext(),
      // Actors never talk to the Kubernetes API: no token in their pods.
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      restartPolicy: 'Always',
      terminationGracePeriodSeconds: group === 'learner' ? 300 : 60,
      ...(Object.keys(g.placement.nodeSelector).length ? { nodeSelector: { ...g.placement.nodeSelector } } : {}),
      ...(tolerations.length ? { tolerations } : {}),
      ...(g.gang && config.gangSchedulerName ? { schedulerName: config.gangSchedulerName } : {}),
    },
  };
}

/** Replicas of a group now: 0 while suspended or finished. */
export function desiredReplicas(spec: RunSpec, group: GroupName, scaleToZero: boolean): number {
  return scaleToZero ? 0 : spec.actors[group].replicas;
}

function workload(run: TrainingRun, group: GroupName, spec: RunSpec, config: ControllerConfig, rendered: RenderedRunConfig, scaleToZero: boolean): Workload {
  const name = groupObjectName(spec.name, group);
  const metadata = { name, namespace: run.metadata.namespace, labels: groupLabels(spec.name, group), ownerReferences: [ownerReference(run)] };
  const template = podTemplate(group, spec, config, rendered.hash);
  const replicas = desiredReplicas(spec, group, scaleToZero);
  const selector = { matchLabels: groupSelector(spec.name, group) };
  if (group === 'learner') {
    const obj: V1StatefulSet = {
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata,
      // Parallel: every rank of a multi-GPU learner starts together (gang), not one by one.
      spec: { replicas, selector, serviceName: name, podManagementPolicy: 'Parallel', template },
    };
    return { group, kind: 'StatefulSet', obj: withSpecHash(obj, obj.spec) };
  }
  // A GPU group cannot surge: replace pods one at a time instead of asking for an extra GPU. The
  // coordinator is never two at once (one task sequence per run): the old pod goes before the new starts.
  const strategy =
    group === 'coordinator'
      ? { type: 'Recreate' }
      : gpuCount(spec.actors[group]) > 0
        ? { type: 'RollingUpdate', rollingUpdate: { maxSurge: 0, maxUnavailable: 1 } }
        : undefined;
  const obj: V1Deployment = { apiVersion: 'apps/v1', kind: 'Deployment', metadata, spec: { replicas, selector, template, ...(strategy ? { strategy } : {}) } };
  return { group, kind: 'Deployment', obj: withSpecHash(obj, obj.spec) };
}

function headlessService(run: TrainingRun, group: GroupName, spec: RunSpec, port: number): V1Service {
  const obj: V1Service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: groupObjectName(spec.name, group), namespace: run.metadata.namespace, labels: groupLabels(spec.name, group), ownerReferences: [ownerReference(run)] },
    spec: {
      clusterIP: 'None',
      selector: groupSelector(spec.name, group),
      // Learner ranks must resolve each other while starting (distributed rendezvous), before they are ready.
      publishNotReadyAddresses: group === 'learner',
      ports: [
        { name: 'grpc', port, targetPort: port, protocol: 'TCP', appProtocol: 'grpc' },
        { name: 'metrics', port: PORTS.metrics, targetPort: PORTS.metrics, protocol: 'TCP' },
      ],
    },
  };
  return withSpecHash(obj, obj.spec);
}

/**
 * Every object the run should have now. Throws when the run has no uid (it must come from the API
 * server) or when `rendered` was computed for another spec.
 */
export function desiredObjects(run: TrainingRun, spec: RunSpec, config: ControllerConfig, rendered: RenderedRunConfig, opts: { scaleToZero: boolean }): DesiredObjects {
  const configMap = withSpecHash<V1ConfigMap>(
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: configMapName(spec.name), namespace: run.metadata.namespace, labels: runLabels(spec.name), ownerReferences: [ownerReference(run)] },
      data: rendered.data,
    },
    rendered.data,
  );
  const workloads = GROUPS.map((g) => workload(run, g, spec, config, rendered, opts.scaleToZero));
  const services = GROUPS.flatMap((g) => (SERVICE_PORTS[g] ? [headlessService(run, g, spec, SERVICE_PORTS[g]!)] : []));
  return { configMap, workloads, services };
}
