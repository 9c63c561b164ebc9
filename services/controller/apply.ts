// Create-or-update of one owned object: compares the spec-hash annotation (server defaults never cause
// an update), refuses to take over objects the run does not own, and keeps immutable Service fields.

import type { V1OwnerReference } from '@kubernetes/client-node';
import { ParleyError } from '../core/errors.js';
import { KubeApiError, type KindMap, type KubeClient, type ManagedKind } from './kube-client.js';
import { ANNOTATION_SPEC_HASH } from './labels.js';

export type ApplyResult = 'created' | 'updated' | 'unchanged';

type Meta = { name?: string; namespace?: string; resourceVersion?: string; annotations?: Record<string, string>; ownerReferences?: V1OwnerReference[] };

/**
 * Makes the object match `desired`. Rejects with KubeApiError (409 when another writer got there first:
 * requeue and try again) or ParleyError('failed_precondition') when an object of that name exists
 * but belongs to something else (never overwritten).
 */
export async function applyObject<K extends ManagedKind>(k8s: KubeClient, kind: K, desired: KindMap[K]): Promise<ApplyResult> {
  const meta = desired.metadata as Meta;
  const existing = await k8s.get(kind, meta.namespace!, meta.name!);
  if (!existing) {
    await k8s.create(kind, desired);
    return 'created';
  }
  const em = existing.metadata as Meta;
  const owner = meta.ownerReferences?.find((r) => r.controller);
  const theirs = em.ownerReferences?.find((r) => r.controller);
  if (owner && theirs?.uid !== owner.uid) {
    const who = theirs ? `${theirs.kind} ${theirs.name} (uid ${theirs.uid})` : 'no controller';
    throw new ParleyError('failed_precondition', `${kind} ${meta.namespace}/${meta.name} exists and is owned by ${who}; delete it or rename the run`, {
      // A run deleted and re-created under the same name waits for the garbage collector.
      retryable: !!theirs,
    });
  }
  if (em.annotations?.[ANNOTATION_SPEC_HASH] === meta.annotations?.[ANNOTATION_SPEC_HASH]) return 'unchanged';
  const next = structuredClone(desired) as KindMap[K];
  (next.metadata as Meta).resourceVersion = em.resourceVersion;
  if (kind === 'Service') {
    const spec = (next as KindMap['Service']).spec!;
    const cur = (existing as KindMap['Service']).spec;
    if (cur?.clusterIPs) spec.clusterIPs = cur.clusterIPs;
  }
  await k8s.replace(kind, next);
  return 'updated';
}

/** Deletes the object unless already gone. Rejects with KubeApiError other than 404. */
export async function deleteObject(k8s: KubeClient, kind: ManagedKind, namespace: string, name: string): Promise<boolean> {
  try {
    return await k8s.delete(kind, namespace, name);
  } catch (e) {
    if (KubeApiError.is(e, 404)) return false;
    throw e;
  }
}
