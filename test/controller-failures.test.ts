// Actor failures against the Kubernetes API test double: crashed containers and failed pods count
// against maxRestarts, failed pods (a whole gang) are replaced after a backoff, and an exhausted budget
// fails the run and scales it to zero.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRun, eventually, exampleRun, metricValue, startHarness, type Harness } from '../services/controller/testing/harness.js';
import type { TrainingRun } from '../services/controller/training-run.js';
import { startKubeApiDouble, type KubeApiDouble } from './fixtures/kube-api-double.js';

const NS = 'team-b';
let api: KubeApiDouble;
let h: Harness;

beforeAll(async () => {
  api = await startKubeApiDouble();
  h = await startHarness(api.kubeConfig(), { restartBaseMs: 400, restartMaxMs: 1600 });
});

afterAll(async () => {
  await h?.close();
  await api?.stop();
});

const status = async (name: string) => (await h.k8s.getRun(NS, name))?.status;
const group = async (name: string, g: string) => (await status(name))?.actors?.find((a) => a.group === g);
const podsOf = (name: string, g: string) => api.list('pods', NS).filter((p) => p.metadata.labels?.['parley.dev/run'] === name && p.metadata.labels?.['parley.dev/group'] === g);

function run(name: string, edit: (spec: any) => void): TrainingRun {
  return exampleRun('cpu-small', (r) => {
    r.metadata.name = name;
    edit(r.spec);
  });
}

describe('restarts', () => {
  it('replaces a whole gang after the backoff, never before, and keeps counting', async () => {
    const name = 'gang';
    await createRun(h, NS, run(name, (s) => Object.assign(s.actors.learner, { replicas: 2, gang: true, maxRestarts: 3 })));
    await eventually(async () => (await status(name))?.phase === 'Provisioning', 10_000, 'Provisioning');
    api.runWorkloads();
    await eventually(async () => (await status(name))?.phase === 'Running', 10_000, 'Running');

    const deletions: number[] = [];
    const off = api.onRequest((method, path) => {
      if (method === 'DELETE' && /\/pods\/gang-learner-\d$/.test(path)) deletions.push(Date.now());
    });
    const crashedAt = Date.now();
    api.crashContainer(NS, 'gang-learner-1', 'engine');
    const waiting = await eventually(async () => (await group(name, 'learner'))?.nextRestartTime, 10_000, 'nextRestartTime');
    expect(Date.parse(waiting)).toBeGreaterThanOrEqual(crashedAt + 200 - 50);
    await eventually(() => podsOf(name, 'learner').length === 0, 10_000, 'gang deleted');
    off();
    expect(deletions).toHaveLength(2);
    // Equal jitter: at least half the first backoff (400 ms) after the failure.
    expect(Math.min(...deletions)).toBeGreaterThanOrEqual(crashedAt + 200 - 50);

    api.runWorkloads();
    const g = await eventually(async () => {
      const x = await group(name, 'learner');
      return x?.ready === 2 && x.retiredRestarts === 1 ? x : undefined;
    }, 10_000, 'gang back, its restart retired');
    expect(g).toMatchObject({ restarts: 1, retiredRestarts: 1 });
    expect(g.nextRestartTime).toBeUndefined();
    expect((await status(name))!.phase).toBe('Running');
    expect(await metricValue(h.registry, 'parley_run_actor_restarts_total', { run: name, group: 'learner' })).toBe(1);
    const reasons = api.list('events', NS).filter((e) => (e.involvedObject as { name: string }).name === name).map((e) => e.reason);
    expect(reasons).toContain('RestartingActors');
  });

  it('replaces a failed pod of a Deployment after the backoff', async () => {
    const name = 'evicted';
    await createRun(h, NS, run(name, (s) => (s.actors.sandbox.maxRestarts = -1)));
    await eventually(async () => (await status(name))?.phase === 'Provisioning', 10_000, 'Provisioning');
    api.runWorkloads();
    await eventually(async () => (await status(name))?.phase === 'Running', 10_000, 'Running');
    const pod = podsOf(name, 'sandbox')[0]!.metadata.name;
    api.failPod(NS, pod);
    await eventually(async () => (await status(name))?.phase === 'Provisioning', 10_000, 'not ready while the pod is failed');
    expect((await status(name))!.conditions!.find((c) => c.type === 'ActorsReady')?.reason).toBe('RestartBackoff');
    await eventually(() => api.get('pods', NS, pod) === undefined, 10_000, 'failed pod replaced');
    api.runWorkloads();
    await eventually(async () => (await status(name))?.phase === 'Running', 10_000, 'Running again');
    expect(await group(name, 'sandbox')).toMatchObject({ restarts: 1, retiredRestarts: 1 });
  });

  it('fails the run when a group exceeds maxRestarts, and scales everything to zero', async () => {
    const name = 'fragile';
    await createRun(h, NS, run(name, (s) => (s.actors.rollout.maxRestarts = 1)));
    await eventually(async () => (await status(name))?.phase === 'Provisioning', 10_000, 'Provisioning');
    api.runWorkloads();
    await eventually(async () => (await status(name))?.phase === 'Running', 10_000, 'Running');
    const pod = podsOf(name, 'rollout')[0]!.metadata.name;
    api.crashContainer(NS, pod);
    await eventually(async () => (await group(name, 'rollout'))?.restarts === 1, 10_000, 'one restart');
    expect((await status(name))!.phase).toBe('Running');
    api.crashContainer(NS, pod);
    const st = await eventually(async () => ((await status(name))?.phase === 'Failed' ? status(name) : undefined), 10_000, 'Failed');
    expect(st!.conditions!.find((c) => c.type === 'Failed')).toMatchObject({ status: 'True', reason: 'RestartsExhausted', message: 'rollout failed 2 times (maxRestarts 1)' });
    expect(st!.completionTime).toBeDefined();
    await eventually(
      () => api.list('apps/deployments', NS).filter((d) => d.metadata.labels?.['parley.dev/run'] === name).every((d) => (d.spec as { replicas: number }).replicas === 0),
      10_000,
      'scaled to zero',
    );
    expect((api.get('apps/statefulsets', NS, `${name}-learner`)!.spec as { replicas: number }).replicas).toBe(0);
    // Final: more pod churn does not bring the run back.
    api.runWorkloads();
    await new Promise((r) => setTimeout(r, 300));
    expect((await status(name))!.phase).toBe('Failed');
    const failedEvent = api.list('events', NS).find((e) => (e.involvedObject as { name: string }).name === name && e.reason === 'Failed');
    expect(failedEvent).toMatchObject({ type: 'Warning' });
  });
});
