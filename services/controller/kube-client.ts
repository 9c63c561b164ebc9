// The controller's narrow view of the Kubernetes API: typed CRUD on the kinds it manages, the
// TrainingRun and its status subresource, Leases, Events and informers, over @kubernetes/client-node.

import {
  ApiException,
  AppsV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  makeInformer,
  type CoreV1Event,
  type Informer,
  type KubeConfig,
  type KubernetesObject,
  type ObjectCache,
  type V1ConfigMap,
  type V1Deployment,
  type V1Lease,
  type V1Pod,
  type V1Service,
  type V1StatefulSet,
} from '@kubernetes/client-node';
import { ParleyError, type ErrorCode } from '../core/errors.js';
import { GROUP, PLURAL, VERSION, type TrainingRun } from './training-run.js';

/** The kinds the controller reads and writes, by name. */
export interface KindMap {
  Deployment: V1Deployment;
  StatefulSet: V1StatefulSet;
  Service: V1Service;
  ConfigMap: V1ConfigMap;
  Pod: V1Pod;
  Lease: V1Lease;
}
export type ManagedKind = keyof KindMap;
export type WatchedKind = 'TrainingRun' | 'Deployment' | 'StatefulSet' | 'Pod';
export type KubeInformer<T extends KubernetesObject> = Informer<T> & ObjectCache<T>;

/** A failed API call: `status` is the HTTP status (0 when the server could not be reached), `reason` the Status reason. */
export class KubeApiError extends ParleyError {
  override name = 'KubeApiError';
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
    cause?: unknown,
  ) {
    super(codeFor(status, reason), message, { cause });
  }

  /** True for HTTP `status` (e.g. 404, 409). */
  static is(e: unknown, status: number): e is KubeApiError {
    return e instanceof KubeApiError && e.status === status;
  }
}

function codeFor(status: number, reason: string): ErrorCode {
  if (status === 404) return 'not_found';
  if (status === 409) return reason === 'AlreadyExists' ? 'already_exists' : 'aborted';
  if (status === 410) return 'aborted';
  if (status === 400 || status === 422) return 'invalid_argument';
  if (status === 401) return 'unauthenticated';
  if (status === 403) return 'permission_denied';
  if (status === 429 || status === 0 || status >= 500) return 'unavailable';
  return 'unknown';
}

/** Converts what client-node throws into a KubeApiError. */
export function toKubeError(e: unknown, what: string): KubeApiError {
  if (e instanceof KubeApiError) return e;
  if (e instanceof ApiException) {
    let reason = '';
    let message = '';
    try {
      const body = typeof e.body === 'string' ? JSON.parse(e.body) : e.body;
      reason = typeof body?.reason === 'string' ? body.reason : '';
      message = typeof body?.message === 'string' ? body.message : '';
    } catch {
      // A body that is not a Status: keep the HTTP status only.
    }
    return new KubeApiError(e.code, reason, `${what}: ${e.code} ${reason || 'error'}${message ? `: ${message}` : ''}`, e);
  }
  return new KubeApiError(0, '', `${what}: ${e instanceof Error ? e.message : String(e)}`, e);
}

export interface KubeClient {
  /** The run, or null when it does not exist. Rejects with KubeApiError. */
  getRun(namespace: string, name: string): Promise<TrainingRun | null>;
  /** Writes metadata and spec (finalizers). Rejects with KubeApiError 409 when `run` is stale, 404 when gone. */
  replaceRun(run: TrainingRun): Promise<TrainingRun>;
  /** Writes the status subresource. Rejects with KubeApiError 409 when `run` is stale, 404 when gone. */
  replaceRunStatus(run: TrainingRun): Promise<TrainingRun>;
  /** The object, or null when absent. Rejects with KubeApiError. */
  get<K extends ManagedKind>(kind: K, namespace: string, name: string): Promise<KindMap[K] | null>;
  /** Rejects with KubeApiError 409 (AlreadyExists) when it exists, 422 when invalid. */
  create<K extends ManagedKind>(kind: K, obj: KindMap[K]): Promise<KindMap[K]>;
  /** Rejects with KubeApiError 409 (Conflict) when `obj.metadata.resourceVersion` is stale. */
  replace<K extends ManagedKind>(kind: K, obj: KindMap[K]): Promise<KindMap[K]>;
  /** Deletes in the background; with `uid`, only that incarnation. Resolves false when already gone. */
  delete(kind: ManagedKind, namespace: string, name: string, opts?: { uid?: string }): Promise<boolean>;
  /** Objects matching an equality label selector. Rejects with KubeApiError. */
  list<K extends ManagedKind>(kind: K, namespace: string, labelSelector: string): Promise<KindMap[K][]>;
  /** Records a Kubernetes Event. Rejects with KubeApiError. */
  createEvent(event: CoreV1Event): Promise<void>;
  /** A list+watch cache of `kind` (all namespaces unless `namespace`), not yet started. */
  informer<T extends KubernetesObject>(kind: WatchedKind, opts?: { namespace?: string; labelSelector?: string }): KubeInformer<T>;
}

type Api = { core: CoreV1Api; apps: AppsV1Api; coord: CoordinationV1Api };
type Ops = {
  get(a: Api, namespace: string, name: string): Promise<unknown>;
  create(a: Api, namespace: string, body: any): Promise<unknown>;
  replace(a: Api, namespace: string, name: string, body: any): Promise<unknown>;
  delete(a: Api, namespace: string, name: string, body: any): Promise<unknown>;
  list(a: Api, namespace: string, labelSelector: string): Promise<{ items: unknown[] }>;
};

const OPS: Record<ManagedKind, Ops> = {
  Deployment: {
    get: (a, namespace, name) => a.apps.readNamespacedDeployment({ namespace, name }),
    create: (a, namespace, body) => a.apps.createNamespacedDeployment({ namespace, body }),
    replace: (a, namespace, name, body) => a.apps.replaceNamespacedDeployment({ namespace, name, body }),
    delete: (a, namespace, name, body) => a.apps.deleteNamespacedDeployment({ namespace, name, body }),
    list: (a, namespace, labelSelector) => a.apps.listNamespacedDeployment({ namespace, labelSelector }),
  },
  StatefulSet: {
    get: (a, namespace, name) => a.apps.readNamespacedStatefulSet({ namespace, name }),
    create: (a, namespace, body) => a.apps.createNamespacedStatefulSet({ namespace, body }),
    replace: (a, namespace, name, body) => a.apps.replaceNamespacedStatefulSet({ namespace, name, body }),
    delete: (a, namespace, name, body) => a.apps.deleteNamespacedStatefulSet({ namespace, name, body }),
    list: (a, namespace, labelSelector) => a.apps.listNamespacedStatefulSet({ namespace, labelSelector }),
  },
  Service: {
    get: (a, namespace, name) => a.core.readNamespacedService({ namespace, name }),
    create: (a, namespace, body) => a.core.createNamespacedService({ namespace, body }),
    replace: (a, namespace, name, body) => a.core.replaceNamespacedService({ namespace, name, body }),
    delete: (a, namespace, name, body) => a.core.deleteNamespacedService({ namespace, name, body }),
    list: (a, namespace, labelSelector) => a.core.listNamespacedService({ namespace, labelSelector }),
  },
  ConfigMap: {
    get: (a, namespace, name) => a.core.readNamespacedConfigMap({ namespace, name }),
    create: (a, namespace, body) => a.core.createNamespacedConfigMap({ namespace, body }),
    replace: (a, namespace, name, body) => a.core.replaceNamespacedConfigMap({ namespace, name, body }),
    delete: (a, namespace, name, body) => a.core.deleteNamespacedConfigMap({ namespace, name, body }),
    list: (a, namespace, labelSelector) => a.core.listNamespacedConfigMap({ namespace, labelSelector }),
  },
  Pod: {
    get: (a, namespace, name) => a.core.readNamespacedPod({ namespace, name }),
    create: (a, namespace, body) => a.core.createNamespacedPod({ namespace, body }),
    replace: (a, namespace, name, body) => a.core.replaceNamespacedPod({ namespace, name, body }),
    delete: (a, namespace, name, body) => a.core.deleteNamespacedPod({ namespace, name, body }),
    list: (a, namespace, labelSelector) => a.core.listNamespacedPod({ namespace, labelSelector }),
  },
  Lease: {
    get: (a, namespace, name) => a.coord.readNamespacedLease({ namespace, name }),
    create: (a, namespace, body) => a.coord.createNamespacedLease({ namespace, body }),
    replace: (a, namespace, name, body) => a.coord.replaceNamespacedLease({ namespace, name, body }),
    delete: (a, namespace, name, body) => a.coord.deleteNamespacedLease({ namespace, name, body }),
    list: (a, namespace, labelSelector) => a.coord.listNamespacedLease({ namespace, labelSelector }),
  },
};

const WATCH_PATHS: Record<WatchedKind, (ns?: string) => string> = {
  TrainingRun: (ns) => (ns ? `/apis/${GROUP}/${VERSION}/namespaces/${ns}/${PLURAL}` : `/apis/${GROUP}/${VERSION}/${PLURAL}`),
  Deployment: (ns) => (ns ? `/apis/apps/v1/namespaces/${ns}/deployments` : '/apis/apps/v1/deployments'),
  StatefulSet: (ns) => (ns ? `/apis/apps/v1/namespaces/${ns}/statefulsets` : '/apis/apps/v1/statefulsets'),
  Pod: (ns) => (ns ? `/api/v1/namespaces/${ns}/pods` : '/api/v1/pods'),
};

function nameOf(obj: { metadata?: { namespace?: string; name?: string } }, kind: string): { namespace: string; name: string } {
  const { namespace, name } = obj.metadata ?? {};
  if (!namespace || !name) throw new KubeApiError(400, 'BadRequest', `${kind}: metadata.namespace and metadata.name are required`);
  return { namespace, name };
}

/** The KubeClient over a kubeconfig (in-cluster, a file, or a test double's address). */
export function createKubeClient(kc: KubeConfig): KubeClient {
  const api: Api = { core: kc.makeApiClient(CoreV1Api), apps: kc.makeApiClient(AppsV1Api), coord: kc.makeApiClient(CoordinationV1Api) };
  const custom = kc.makeApiClient(CustomObjectsApi);
  const crd = { group: GROUP, version: VERSION, plural: PLURAL };
  const call = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (e) {
      throw toKubeError(e, what);
    }
  };
  const orNull = async <T>(p: Promise<T>): Promise<T | null> => {
    try {
      return await p;
    } catch (e) {
      if (KubeApiError.is(e, 404)) return null;
      throw e;
    }
  };
  return {
    getRun: (namespace, name) => orNull(call(`get TrainingRun ${namespace}/${name}`, () => custom.getNamespacedCustomObject({ ...crd, namespace, name }))),
    replaceRun: (run) => {
      const { namespace, name } = nameOf(run, 'TrainingRun');
      return call(`update TrainingRun ${namespace}/${name}`, () => custom.replaceNamespacedCustomObject({ ...crd, namespace, name, body: run }));
    },
    replaceRunStatus: (run) => {
      const { namespace, name } = nameOf(run, 'TrainingRun');
      return call(`update TrainingRun ${namespace}/${name} status`, () => custom.replaceNamespacedCustomObjectStatus({ ...crd, namespace, name, body: run }));
    },
    get: (kind, namespace, name) => orNull(call(`get ${kind} ${namespace}/${name}`, () => OPS[kind].get(api, namespace, name))) as Promise<any>,
    create: (kind, obj) => {
      const { namespace, name } = nameOf(obj, kind);
      return call(`create ${kind} ${namespace}/${name}`, () => OPS[kind].create(api, namespace, obj)) as Promise<any>;
    },
    replace: (kind, obj) => {
      const { namespace, name } = nameOf(obj, kind);
      return call(`update ${kind} ${namespace}/${name}`, () => OPS[kind].replace(api, namespace, name, obj)) as Promise<any>;
    },
    delete: async (kind, namespace, name, opts = {}) => {
      const body = { propagationPolicy: 'Background', ...(opts.uid ? { preconditions: { uid: opts.uid } } : {}) };
      const done = await orNull(call(`delete ${kind} ${namespace}/${name}`, () => OPS[kind].delete(api, namespace, name, body)));
      return done !== null;
    },
    list: async (kind, namespace, labelSelector) =>
      (await call(`list ${kind} in ${namespace}`, () => OPS[kind].list(api, namespace, labelSelector))).items as any[],
    createEvent: async (event) => {
      const namespace = event.metadata?.namespace ?? 'default';
      await call(`create Event in ${namespace}`, () => api.core.createNamespacedEvent({ namespace, body: event }));
    },
    informer: <T extends KubernetesObject>(kind: WatchedKind, opts: { namespace?: string; labelSelector?: string } = {}) => {
      const { namespace, labelSelector } = opts;
      const list = async (): Promise<any> => {
        switch (kind) {
          case 'TrainingRun':
            return namespace
              ? custom.listNamespacedCustomObject({ ...crd, namespace, labelSelector })
              : custom.listClusterCustomObject({ ...crd, labelSelector });
          case 'Deployment':
            return namespace ? api.apps.listNamespacedDeployment({ namespace, labelSelector }) : api.apps.listDeploymentForAllNamespaces({ labelSelector });
          case 'StatefulSet':
            return namespace ? api.apps.listNamespacedStatefulSet({ namespace, labelSelector }) : api.apps.listStatefulSetForAllNamespaces({ labelSelector });
          case 'Pod':
            return namespace ? api.core.listNamespacedPod({ namespace, labelSelector }) : api.core.listPodForAllNamespaces({ labelSelector });
        }
      };
      return makeInformer<T>(kc, WATCH_PATHS[kind](namespace), list, labelSelector);
    },
  };
}
