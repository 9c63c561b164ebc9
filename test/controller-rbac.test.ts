// Least privilege: a whole run lifecycle against the Kubernetes API test double, recording every request
// the controller makes; the ClusterRole and Role grant exactly those verbs, and nothing the controller uses is missing.

import { afterAll, beforeAll, expect, it } from 'vitest';
import { CONTROLLER_RULES, LEASE_RULES } from '../services/controller/rbac.js';
import { ANNOTATION_SPEC_HASH } from '../services/controller/labels.js';
import { createRun, deleteRun, editRun, eventually, exampleRun, startHarness, type Harness } from '../services/controller/testing/harness.js';
import { startKubeApiDouble, type KubeApiDouble } from './fixtures/kube-api-double.js';

const NS = 'team-e';
let api: KubeApiDouble;
let h: Harness;

beforeAll(async () => {
  api = await startKubeApiDouble();
  h = await startHarness(api.kubeConfig('controller'), { leaderElect: true, leaseDurationMs: 1500, renewDeadlineMs: 1000, retryPeriodMs: 100 }, undefined, api.kubeConfig('tester'));
  await h.controller.whenLeading();
});

afterAll(async () => {
  await h?.close();
  await api?.stop();
});

/** Permission checked by admission, not by a request of its own: blockOwnerDeletion on owned objects. */
const ADMISSION_ONLY = new Set(['parley.dev trainingruns/finalizers update']);

it('grants exactly the verbs a full lifecycle uses', async () => {
  const name = 'audited';
  const status = async () => (await h.user.getRun(NS, name))?.status;
  const run = await createRun(h, NS, exampleRun('cpu-small', (r) => {
    r.metadata.name = name;
    Object.assign((r.spec as any).actors.learner, { gang: true, maxRestarts: -1 });
  }));
  await eventually(async () => (await status())?.phase === 'Provisioning', 10_000, 'Provisioning');
  api.runWorkloads();
  await eventually(async () => (await status())?.phase === 'Running', 10_000, 'Running');

  // A restart (pods: delete), strays to prune (deployments, statefulsets, services: delete).
  api.crashContainer(NS, `${name}-learner-0`, 'engine');
  await eventually(() => api.get('pods', NS, `${name}-learner-0`) === undefined, 10_000, 'gang restart');
  const owner = [{ apiVersion: 'parley.dev/v1alpha1', kind: 'TrainingRun', name, uid: run.metadata.uid, controller: true }];
  const labels = { 'parley.dev/run': name, 'app.kubernetes.io/managed-by': 'parley-controller' };
  const template = { metadata: { labels: { a: 'b' } }, spec: { containers: [{ name: 'c', image: 'x' }] } };
  api.put('apps/deployments', { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: `${name}-stray`, namespace: NS, labels, ownerReferences: owner }, spec: { selector: { matchLabels: { a: 'b' } }, template } });
  api.put('apps/statefulsets', { apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: `${name}-stray`, namespace: NS, labels, ownerReferences: owner }, spec: { serviceName: 'x', selector: { matchLabels: { a: 'b' } }, template } });
  api.put('services', { apiVersion: 'v1', kind: 'Service', metadata: { name: `${name}-stray`, namespace: NS, labels, ownerReferences: owner }, spec: { ports: [{ port: 1 }] } });
  await eventually(() => !api.get('services', NS, `${name}-stray`) && !api.get('apps/statefulsets', NS, `${name}-stray`) && !api.get('apps/deployments', NS, `${name}-stray`), 10_000, 'strays pruned');

  // A Service rendered by an older controller (services: update), a spec change (configmaps, workloads: update), suspend.
  const svc = api.get('services', NS, `${name}-sandbox`)!;
  api.put('services', { ...svc, metadata: { ...svc.metadata, annotations: { [ANNOTATION_SPEC_HASH]: 'older' } } });
  await editRun(h, NS, name, (r) => ((r.spec as any).algorithm.learningRate = 2e-3));
  await editRun(h, NS, name, (r) => ((r.spec as any).suspend = true));
  await eventually(async () => (await status())?.phase === 'Suspended', 10_000, 'Suspended');
  expect(api.get('services', NS, `${name}-sandbox`)!.metadata.annotations[ANNOTATION_SPEC_HASH]).not.toBe('older');

  await deleteRun(h, NS, name);
  await eventually(async () => (await h.user.getRun(NS, name)) === null, 10_000, 'deleted');
  await h.controller.stop();

  const used = new Set(api.requests.filter((r) => r.user === 'controller').map((r) => `${r.group} ${r.resource}${r.subresource ? `/${r.subresource}` : ''} ${r.verb}`));
  const granted = new Set([...CONTROLLER_RULES, ...LEASE_RULES].flatMap((rule) => rule.apiGroups.flatMap((g) => rule.resources.flatMap((res) => rule.verbs.map((v) => `${g} ${res} ${v}`)))));
  expect([...used].filter((u) => !granted.has(u)), 'used but not granted').toEqual([]);
  expect([...granted].filter((g) => !used.has(g) && !ADMISSION_ONLY.has(g)), 'granted but never used').toEqual([]);
  expect(api.requests.some((r) => r.user === 'controller' && r.resource === 'secrets')).toBe(false);
});
