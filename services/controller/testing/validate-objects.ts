// Test support: validates every object the controller or the chart produces against the upstream
// Kubernetes OpenAPI schemas (kubernetes-models), and Prometheus Operator monitors against their CRD fields.

import { Ajv } from 'ajv';
import { CustomResourceDefinition } from 'kubernetes-models/apiextensions.k8s.io/v1';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { Lease } from 'kubernetes-models/coordination.k8s.io/v1';
import { ClusterRole, ClusterRoleBinding, Role, RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { ConfigMap, Event, Namespace, Pod, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';

type Obj = { apiVersion?: string; kind?: string; metadata?: { name?: string }; [k: string]: unknown };
type ModelCtor = new (data: any) => { validate(): void };

const MODELS: Record<string, ModelCtor> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Service': Service,
  'v1/ServiceAccount': ServiceAccount,
  'v1/Pod': Pod,
  'v1/Secret': Secret,
  'v1/Event': Event,
  'v1/Namespace': Namespace,
  'apps/v1/Deployment': Deployment,
  'apps/v1/StatefulSet': StatefulSet,
  'coordination.k8s.io/v1/Lease': Lease,
  'rbac.authorization.k8s.io/v1/ClusterRole': ClusterRole,
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': ClusterRoleBinding,
  'rbac.authorization.k8s.io/v1/Role': Role,
  'rbac.authorization.k8s.io/v1/RoleBinding': RoleBinding,
  'apiextensions.k8s.io/v1/CustomResourceDefinition': CustomResourceDefinition,
};

// The fields of ServiceMonitor/PodMonitor (monitoring.coreos.com/v1) that Parley uses, as the Prometheus
// Operator API reference documents them; unknown fields are rejected so typos surface.
const endpoint = {
  type: 'object',
  additionalProperties: false,
  properties: {
    port: { type: 'string' },
    path: { type: 'string' },
    interval: { type: 'string', pattern: '^(0|(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$' },
    scrapeTimeout: { type: 'string' },
    honorLabels: { type: 'boolean' },
    scheme: { enum: ['http', 'https'] },
  },
  required: ['port'],
};
const selector = { type: 'object', properties: { matchLabels: { type: 'object', additionalProperties: { type: 'string' } } }, additionalProperties: false };
const monitorSpec = (endpointsKey: string) => ({
  type: 'object',
  required: ['apiVersion', 'kind', 'metadata', 'spec'],
  properties: {
    metadata: { type: 'object', required: ['name'] },
    spec: {
      type: 'object',
      additionalProperties: false,
      required: ['selector', endpointsKey],
      properties: {
        selector,
        [endpointsKey]: { type: 'array', minItems: 1, items: endpoint },
        namespaceSelector: { type: 'object', properties: { any: { type: 'boolean' }, matchNames: { type: 'array', items: { type: 'string' } } }, additionalProperties: false },
        jobLabel: { type: 'string' },
        [endpointsKey === 'endpoints' ? 'targetLabels' : 'podTargetLabels']: { type: 'array', items: { type: 'string' } },
      },
    },
  },
});
const ajv = new Ajv({ allErrors: true, strict: false });
const MONITORS: Record<string, ReturnType<Ajv['compile']>> = {
  'monitoring.coreos.com/v1/ServiceMonitor': ajv.compile(monitorSpec('endpoints')),
  'monitoring.coreos.com/v1/PodMonitor': ajv.compile(monitorSpec('podMetricsEndpoints')),
};

/** Throws an Error naming the object when it does not match its upstream schema, or when its kind is unknown here. */
export function validateObject(obj: Obj): void {
  const id = `${obj.apiVersion}/${obj.kind}`;
  const what = `${obj.kind} ${obj.metadata?.name ?? '(unnamed)'}`;
  const model = MODELS[id];
  if (model) {
    try {
      new model(JSON.parse(JSON.stringify(obj))).validate();
    } catch (e) {
      throw new Error(`${what} is not a valid ${id}: ${e instanceof Error ? e.message : String(e)}`);
    }
    return;
  }
  const monitor = MONITORS[id];
  if (monitor) {
    if (!monitor(obj)) throw new Error(`${what} is not a valid ${id}: ${ajv.errorsText(monitor.errors)}`);
    return;
  }
  throw new Error(`${what}: no schema known for ${id}`);
}
