// Leader election over a Lease on the Kubernetes API test double: one leader among replicas, a clean
// hand-over when the leader stops, and a take-over only after a silent holder's lease duration.

import { afterAll, beforeAll, expect, it } from 'vitest';
import { createRun, eventually, exampleRun, startHarness, type Harness } from '../services/controller/testing/harness.js';
import type { ControllerConfig } from '../services/controller/config.js';
import { startKubeApiDouble, type KubeApiDouble } from './fixtures/kube-api-double.js';

const NS = 'team-d';
const LEASE_NS = 'parley-system';
let api: KubeApiDouble;
const harnesses: Harness[] = [];

const election = (identity: string, leaseDurationMs = 5000): Partial<ControllerConfig> => ({ leaderElect: true, identity, leaseDurationMs, renewDeadlineMs: leaseDurationMs - 1000, retryPeriodMs: 100 });
const holder = () => (api.get('coordination.k8s.io/leases', LEASE_NS, 'parley-controller')?.spec as { holderIdentity?: string } | undefined)?.holderIdentity;

beforeAll(async () => {
  api = await startKubeApiDouble();
});

afterAll(async () => {
  for (const h of harnesses) await h.close();
  await api?.stop();
});

it('elects exactly one leader, which reconciles', async () => {
  for (const id of ['a', 'b']) harnesses.push(await startHarness(api.kubeConfig('controller'), election(id)));
  await eventually(() => harnesses.some((h) => h.controller.currentState === 'leading'), 5_000, 'a leader');
  await new Promise((r) => setTimeout(r, 400));
  const leaders = harnesses.filter((h) => h.controller.currentState === 'leading');
  expect(leaders).toHaveLength(1);
  expect(holder()).toBe(leaders[0]!.config.identity);
  expect(harnesses.find((h) => h !== leaders[0])!.controller.currentState).toBe('candidate');
  await createRun(harnesses[0]!, NS, exampleRun('cpu-small', (r) => (r.metadata.name = 'led')));
  await eventually(async () => (await harnesses[0]!.k8s.getRun(NS, 'led'))?.status?.phase, 10_000, 'reconciled by the leader');
});

it('hands over at once when the leader stops and releases the Lease', async () => {
  const leader = harnesses.find((h) => h.controller.currentState === 'leading')!;
  const other = harnesses.find((h) => h !== leader)!;
  const stoppedAt = Date.now();
  await leader.controller.stop();
  expect(leader.controller.currentState).toBe('stopped');
  await eventually(() => other.controller.currentState === 'leading', 5_000, 'the other leads');
  // Released, not expired: well within the 5 s lease duration.
  expect(Date.now() - stoppedAt).toBeLessThan(4000);
  expect(holder()).toBe(other.config.identity);
  await other.controller.stop();
  await leader.controller.stop();
});

it('takes over from a holder that went silent only after its lease duration', async () => {
  api.put('coordination.k8s.io/leases', {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name: 'parley-controller', namespace: LEASE_NS },
    spec: { holderIdentity: 'ghost', leaseDurationSeconds: 2, renewTime: new Date().toISOString().replace('Z', '000Z'), leaseTransitions: 4 },
  });
  const started = Date.now();
  const h = await startHarness(api.kubeConfig('controller'), election('c', 1500));
  harnesses.push(h);
  await new Promise((r) => setTimeout(r, 1000));
  expect(h.controller.currentState).toBe('candidate');
  await eventually(() => h.controller.currentState === 'leading', 5_000, 'take-over');
  expect(Date.now() - started).toBeGreaterThanOrEqual(2000);
  const spec = api.get('coordination.k8s.io/leases', LEASE_NS, 'parley-controller')!.spec as { holderIdentity: string; leaseTransitions: number };
  expect(spec).toMatchObject({ holderIdentity: 'c', leaseTransitions: 5 });
});
