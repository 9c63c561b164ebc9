// Status as a pure function: phases, condition reasons, transition times kept while a status holds,
// final phases that stay final, and restarts (observeGroup) with backoff and gang semantics.

import { podInitFailure } from './restarts.js';
import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { observeGroup, podFailures, restartBackoffMs } from './restarts.js';
import { computeStatus, type Observed, type ObservedGroup } from './run-status.js';

const T0 = '2026-01-01T00:00:00.000Z';
const T1 = '2026-01-01T00:01:00.000Z';
const group = (g: string, ready: number, extra: Partial<ObservedGroup> = {}): ObservedGroup => ({ group: g, desired: 1, ready, restarts: 0, retiredRestarts: 0, maxRestarts: -1, ...extra });
const obs = (o: Partial<Observed>): Observed => ({ generation: 1, now: T0, spec: { ok: true }, suspend: false, steps: 10, groups: [group('policy', 0)], ...o });
const cond = (s: ReturnType<typeof computeStatus>, type: string) => s.conditions!.find((c) => c.type === type)!;

describe('computeStatus', () => {
  it('goes Provisioning → Running and keeps transition times while statuses hold', () => {
    const a = computeStatus(undefined, obs({}));
    expect(a.phase).toBe('Provisioning');
    expect(cond(a, 'ActorsReady')).toMatchObject({ status: 'False', reason: 'Provisioning', lastTransitionTime: T0 });
    const b = computeStatus(a, obs({ now: T1, groups: [group('policy', 1)] }));
    expect(b.phase).toBe('Running');
    expect(cond(b, 'ActorsReady')).toMatchObject({ status: 'True', reason: 'AllReady', lastTransitionTime: T1 });
    expect(cond(b, 'SpecValid').lastTransitionTime).toBe(T0);
    expect(cond(b, 'Training')).toMatchObject({ status: 'True', reason: 'Training' });
    const c = computeStatus(b, obs({ now: '2026-01-01T00:02:00.000Z', groups: [group('policy', 0)] }));
    expect(cond(c, 'ActorsReady').reason).toBe('NotReady');
  });

  it('reports an invalid spec, a suspended run and an unreachable bus with their reasons', () => {
    const bad = computeStatus(undefined, obs({ spec: { ok: false, reason: 'InvalidSpec', message: 'spec.data: required' } }));
    expect(bad.phase).toBe('Invalid');
    expect(bad.message).toBe('spec.data: required');
    expect(cond(bad, 'Training').reason).toBe('InvalidSpec');
    const susp = computeStatus(undefined, obs({ suspend: true }));
    expect([susp.phase, cond(susp, 'ActorsReady').reason, cond(susp, 'Training').reason]).toEqual(['Suspended', 'Suspended', 'Suspended']);
    const bus = computeStatus(undefined, obs({ busError: 'NATS: unavailable', groups: [group('policy', 1)] }));
    expect([bus.phase, cond(bus, 'Training').reason]).toEqual(['Provisioning', 'BusUnavailable']);
  });

  it('names a failed init container in ActorsReady (e.g. an unreachable model URL)', () => {
    const pod = {
      metadata: { name: 'r-policy-abc' },
      status: {
        phase: 'Pending',
        initContainerStatuses: [
          { name: 'prepare-model', ready: false, restartCount: 2, image: 'x', imageID: '', state: { waiting: { reason: 'CrashLoopBackOff' } }, lastState: { terminated: { exitCode: 2, reason: 'Error', message: 'downloading\nparley: model.source.url: cannot reach https://models.example/m.tar.gz: ECONNREFUSED' } } },
        ],
      },
    };
    expect(podInitFailure(pod as never)).toBe('r-policy-abc: init container prepare-model failed (Error): parley: model.source.url: cannot reach https://models.example/m.tar.gz: ECONNREFUSED');
    const st = computeStatus(undefined, obs({ groups: [{ ...group('policy', 0), initFailure: podInitFailure(pod as never)! }] }));
    expect(cond(st, 'ActorsReady')).toMatchObject({ status: 'False', reason: 'InitFailed', message: expect.stringContaining('model.source.url') });
    // Running init containers and ones that succeeded are not failures.
    expect(podInitFailure({ status: { initContainerStatuses: [{ name: 'prepare', ready: true, restartCount: 0, image: 'x', imageID: '', state: { terminated: { exitCode: 0 } } }] } } as never)).toBeUndefined();
  });

  it('succeeds at the last step and fails on exhausted restarts; both are final', () => {
    // The last step alone is not the end: the final held-out evaluation still runs.
    const evaluating = computeStatus(undefined, obs({ groups: [group('policy', 1)], progress: { step: 10, policyVersion: 10, evaluatedStep: 5, metrics: {} } }));
    expect([evaluating.phase, cond(evaluating, 'Training').message]).toEqual(['Running', 'step 10 of 10; final held-out evaluation running']);
    const done = computeStatus(evaluating, obs({ progress: { step: 10, policyVersion: 10, evaluatedStep: 10, metrics: {} } }));
    expect([done.phase, cond(done, 'Succeeded').status, done.completionTime]).toEqual(['Succeeded', 'True', T0]);
    const failed = computeStatus(undefined, obs({ groups: [group('learner', 1, { restarts: 3, maxRestarts: 2 })] }));
    expect(cond(failed, 'Failed')).toMatchObject({ status: 'True', reason: 'RestartsExhausted', message: 'learner failed 3 times (maxRestarts 2)' });
    const later = computeStatus(failed, obs({ now: T1, groups: [group('learner', 1)] }));
    expect([later.phase, later.completionTime, cond(later, 'Failed').message]).toEqual(['Failed', T0, 'learner failed 3 times (maxRestarts 2)']);
  });

  it('never moves step or policy version backwards', () => {
    const a = computeStatus(undefined, obs({ progress: { step: 5, policyVersion: 5, metrics: { rewardMean: 0.5 } } }));
    const b = computeStatus(a, obs({ progress: { step: 2, policyVersion: 2, metrics: {} } }));
    expect([b.step, b.policyVersion]).toEqual([5, 5]);
  });
});

const pod = (name: string, restartCount: number, phase = 'Running', finishedAt?: string): V1Pod => ({
  metadata: { name, uid: name },
  status: {
    phase,
    conditions: [{ type: 'Ready', status: phase === 'Running' ? 'True' : 'False' }],
    containerStatuses: [{ name: 'c', image: 'i', imageID: '', ready: true, restartCount, ...(finishedAt ? { lastState: { terminated: { exitCode: 1, finishedAt: finishedAt as unknown as Date } } } : {}) }],
  },
});

describe('restarts', () => {
  const policy = { baseMs: 1000, maxMs: 8000 };
  const base = { group: 'policy' as const, prev: undefined, desired: 2, maxRestarts: -1, gang: false, frozen: false, policy, now: Date.parse(T1), random: () => 1 };

  it('counts container restarts, failed pods and retired restarts', () => {
    expect(podFailures(pod('a', 2, 'Failed')).failures).toBe(3);
    const o = observeGroup({ ...base, pods: [pod('a', 2), pod('b', 0)], prev: { group: 'policy', desired: 2, ready: 2, restarts: 5, retiredRestarts: 4 } });
    expect(o.status).toMatchObject({ restarts: 6, retiredRestarts: 4, ready: 2 });
    expect(o.replaceNow).toEqual([]);
  });

  it('backs off exponentially with equal jitter, capped', () => {
    expect([1, 2, 3, 4, 5].map((n) => restartBackoffMs(n, policy, () => 1))).toEqual([1000, 2000, 4000, 8000, 8000]);
    expect(restartBackoffMs(1, policy, () => 0)).toBe(500);
  });

  it('replaces a failed pod only once its backoff has passed', () => {
    const failedAt = new Date(Date.parse(T1) - 500).toISOString();
    const early = observeGroup({ ...base, pods: [pod('a', 0, 'Failed', failedAt), pod('b', 0)] });
    expect(early.replaceNow).toEqual([]);
    expect(early.nextReplaceMs).toBe(Date.parse(failedAt) + 1000);
    expect(early.status.nextRestartTime).toBe(new Date(Date.parse(failedAt) + 1000).toISOString());
    const due = observeGroup({ ...base, now: Date.parse(T1) + 600, pods: [pod('a', 0, 'Failed', failedAt), pod('b', 0)] });
    expect(due.replaceNow.map((p) => p.metadata!.name)).toEqual(['a']);
    expect(due.status.retiredRestarts).toBe(1);
  });

  it('restarts a whole gang after any failure, and nothing while frozen or over budget', () => {
    const crashed = new Date(Date.parse(T1) - 5000).toISOString();
    const pods = [pod('l0', 1, 'Running', crashed), pod('l1', 0)];
    expect(observeGroup({ ...base, gang: true, pods }).replaceNow.map((p) => p.metadata!.name)).toEqual(['l0', 'l1']);
    expect(observeGroup({ ...base, gang: true, frozen: true, pods }).replaceNow).toEqual([]);
    expect(observeGroup({ ...base, gang: true, maxRestarts: 0, pods }).replaceNow).toEqual([]);
  });
});
