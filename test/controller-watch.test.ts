// Informer resilience against the Kubernetes API test double: watch streams the server closes, a
// resourceVersion that is too old (410 Gone, relist), and a failing watch (restart with backoff).

import { afterAll, beforeAll, expect, it } from 'vitest';
import { createRun, eventually, exampleRun, metricValue, startHarness, type Harness } from '../services/controller/testing/harness.js';
import { startKubeApiDouble, type KubeApiDouble } from './fixtures/kube-api-double.js';

const NS = 'team-c';
let api: KubeApiDouble;
let h: Harness;

beforeAll(async () => {
  api = await startKubeApiDouble();
  // A long resync: a new run can only be noticed through the watch.
  h = await startHarness(api.kubeConfig(), { resyncMs: 60_000 });
});

afterAll(async () => {
  await h?.close();
  await api?.stop();
});

const reconciled = (name: string) => eventually(async () => (await h.k8s.getRun(NS, name))?.status?.phase, 10_000, `${name} reconciled`);
const watches = () => api.requests.filter((r) => r.verb === 'watch' && r.resource === 'trainingruns').length;
const lists = () => api.requests.filter((r) => r.verb === 'list' && r.resource === 'trainingruns' && r.user === 'tester').length;

it('re-watches from the last resourceVersion when the server closes the stream', async () => {
  const before = { watches: watches(), lists: lists() };
  api.closeWatches();
  await eventually(() => watches() > before.watches, 5_000, 'a new watch');
  await createRun(h, NS, exampleRun('cpu-small', (r) => (r.metadata.name = 'after-close')));
  expect(await reconciled('after-close')).toBe('Provisioning');
  expect(lists()).toBe(before.lists);
});

it('relists after 410 Gone and finds what changed meanwhile', async () => {
  const listsBefore = api.requests.filter((r) => r.verb === 'list' && r.resource === 'trainingruns').length;
  // Hold the informer's re-watch while a run is created and the history it would replay is compacted.
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const off = api.onRequest(async (method, path) => {
    if (method === 'GET' && path === '/apis/parley.dev/v1alpha1/trainingruns') await gate;
  });
  api.closeWatches();
  await createRun(h, NS, exampleRun('cpu-small', (r) => (r.metadata.name = 'during-gap')));
  api.compact();
  release();
  off();
  expect(await reconciled('during-gap')).toBe('Provisioning');
  expect(api.expiredWatches).toBeGreaterThanOrEqual(1);
  await eventually(() => api.requests.filter((r) => r.verb === 'list' && r.resource === 'trainingruns').length > listsBefore, 5_000, 'a relist');
});

it('restarts a failed watch with backoff and counts it', async () => {
  api.failNext('GET', /\/apis\/parley\.dev\/v1alpha1\/trainingruns$/, 500, 'InternalError', 2);
  api.closeWatches();
  await eventually(async () => ((await metricValue(h.registry, 'parley_controller_watch_restarts_total', { kind: 'TrainingRun' })) ?? 0) >= 1, 10_000, 'a counted restart');
  await createRun(h, NS, exampleRun('cpu-small', (r) => (r.metadata.name = 'after-error')));
  expect(await reconciled('after-error')).toBe('Provisioning');
});
