// Actor failures and restarts: counts container restarts and failed pods per group against maxRestarts,
// and decides which pods to replace now, after an exponential backoff (a whole gang at once).

import type { V1Pod } from '@kubernetes/client-node';
import type { GroupName } from './labels.js';
import type { ObservedGroup } from './run-status.js';
import type { ActorGroupStatus } from './training-run.js';

export interface RestartPolicy {
  /** First backoff (ms); doubles per restart. */
  baseMs: number;
  maxMs: number;
}

const ms = (t: Date | string | undefined): number | undefined => {
  if (t === undefined) return undefined;
  const v = t instanceof Date ? t.getTime() : Date.parse(t);
  return Number.isFinite(v) ? v : undefined;
};

/** Failures a pod shows: restarts of its containers, plus one when the pod itself failed; and when the last happened. */
export function podFailures(pod: V1Pod): { failures: number; lastFailureMs?: number } {
  let failures = pod.status?.phase === 'Failed' ? 1 : 0;
  let last: number | undefined;
  for (const cs of pod.status?.containerStatuses ?? []) {
    failures += cs.restartCount ?? 0;
    for (const t of [cs.lastState?.terminated?.finishedAt, cs.state?.terminated?.finishedAt]) {
      const v = ms(t);
      if (v !== undefined && (cs.restartCount > 0 || pod.status?.phase === 'Failed')) last = Math.max(last ?? 0, v);
    }
  }
  return { failures, ...(last !== undefined ? { lastFailureMs: last } : {}) };
}

/**
 * Why the pod's init containers keep it from starting, if they do: `<pod>: init container <name> failed
 * (<reason>): <its termination message>`, cut to 300 characters. Undefined while they succeed or run.
 */
export function podInitFailure(pod: V1Pod): string | undefined {
  for (const cs of pod.status?.initContainerStatuses ?? []) {
    const t = cs.state?.terminated?.exitCode ? cs.state.terminated : cs.lastState?.terminated?.exitCode ? cs.lastState.terminated : undefined;
    if (!t || cs.state?.terminated?.exitCode === 0 || cs.ready) continue;
    const why = (t.message ?? '').trim().split('\n').filter(Boolean).at(-1) ?? '';
    const text = `${pod.metadata?.name ?? 'a pod'}: init container ${cs.name} failed (${t.reason ?? `exit ${t.exitCode}`})${why ? `: ${why}` : ''}`;
    return text.length > 300 ? `${text.slice(0, 297)}...` : text;
  }
  return undefined;
}

/** True when the pod is ready and not being deleted. */
export function podReady(pod: V1Pod): boolean {
  return !pod.metadata?.deletionTimestamp && pod.status?.phase === 'Running' && (pod.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
}

/** Equal-jitter exponential backoff for the `restarts`-th restart: half fixed, half random, capped. */
export function restartBackoffMs(restarts: number, policy: RestartPolicy, random: () => number): number {
  const d = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, restarts - 1));
  return Math.round(d / 2 + (random() * d) / 2);
}

export interface GroupObservation {
  status: ObservedGroup;
  /** Pods to delete now so their workload replaces them. */
  replaceNow: V1Pod[];
  /** When the next replacement is due, if one waits for its backoff (ms since the epoch). */
  nextReplaceMs?: number;
}

/**
 * Observes one group. Restarts = failures of live pods + `retiredRestarts` (failures of pods the
 * controller deleted before). Failed pods (every pod of a gang group, after any failure) are replaced
 * once the backoff from the last failure has passed, unless `frozen` (suspended, finished, or over budget).
 */
export function observeGroup(args: {
  group: GroupName;
  pods: V1Pod[];
  prev: ActorGroupStatus | undefined;
  desired: number;
  maxRestarts: number;
  gang: boolean;
  frozen: boolean;
  policy: RestartPolicy;
  now: number;
  random: () => number;
}): GroupObservation {
  const { group, pods, prev, desired, maxRestarts, gang, policy, now } = args;
  const live = pods.filter((p) => !p.metadata?.deletionTimestamp);
  const per = live.map((p) => ({ pod: p, ...podFailures(p) }));
  const retired = prev?.retiredRestarts ?? 0;
  const restarts = retired + per.reduce((s, x) => s + x.failures, 0);
  const lastMs = Math.max(0, ...per.map((x) => x.lastFailureMs ?? (x.failures > 0 ? now : 0)), ms(prev?.lastFailureTime) ?? 0);
  const status: ObservedGroup = { group, desired, ready: live.filter(podReady).length, restarts, retiredRestarts: retired, maxRestarts };
  const initFailure = live.map(podInitFailure).find((x) => x !== undefined);
  if (initFailure) status.initFailure = initFailure;
  if (lastMs > 0) status.lastFailureTime = new Date(lastMs).toISOString();
  const exhausted = maxRestarts >= 0 && restarts > maxRestarts;
  const candidates = gang ? (per.some((x) => x.failures > 0) ? per : []) : per.filter((x) => x.pod.status?.phase === 'Failed');
  if (args.frozen || exhausted || candidates.length === 0) return { status, replaceNow: [] };
  // Keep a due time once chosen (the jitter must not move it on every reconcile).
  const kept = prev?.nextRestartTime && prev.restarts === restarts ? ms(prev.nextRestartTime) : undefined;
  const due = kept ?? lastMs + restartBackoffMs(restarts, policy, args.random);
  if (due > now) {
    status.nextRestartTime = new Date(due).toISOString();
    return { status, replaceNow: [], nextReplaceMs: due };
  }
  status.retiredRestarts = retired + candidates.reduce((s, x) => s + x.failures, 0);
  // Pods about to be deleted are not ready any more.
  status.ready = per.filter((x) => !candidates.includes(x) && podReady(x.pod)).length;
  return { status, replaceNow: candidates.map((x) => x.pod) };
}
