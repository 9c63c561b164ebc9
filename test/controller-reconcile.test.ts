// The controller against the Kubernetes API test double: creating a run's actors, status from pods and
// NATS events, 409 conflicts, suspend/resume, invalid specs, stale-object pruning and clean deletion.

import type { V1Deployment } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { coordinatorConfig } from '../services/controller/coordinator/index.js';
import { runSubjects } from '../services/core/run-subjects.js';
import { FINALIZER, type TrainingRun } from '../services/controller/training-run.js';
import { restrictedViolations } from '../services/controller/testing/pod-security-check.js';
import { validateObject } from '../services/controller/testing/validate-objects.js';
import { createRun, deleteRun, editRun, eventually, exampleRun, metricValue, startHarness, type Harness } from '../services/controller/testing/harness.js';
import { startKubeApiDouble, type KubeApiDouble } from './fixtures/kube-api-double.js';

const NS = 'team-a';
let api: KubeApiDouble;
let h: Harness;

beforeAll(async () => {
  api = await startKubeApiDouble();
  h = await startHarness(api.kubeConfig());
});

afterAll(async () => {
  await h?.close();
  await api?.stop();
});

const status = async (name: string) => (await h.k8s.getRun(NS, name))?.status;
const owned = (name: string) => [
  ...api.list('apps/deployments', NS),
  ...api.list('apps/statefulsets', NS),
  ...api.list('services', NS),
  ...api.list('configmaps', NS),
].filter((o) => o.metadata.labels?.['parley.dev/run'] === name);

async function publish(run: string, event: string, body: object, id: string): Promise<void> {
  await h.bus.publish(runSubjects(run).event(event), new TextEncoder().encode(JSON.stringify(body)), { msgId: id });
}

describe('a CPU-only run', () => {
  const name = 'cpu-small';

  it('creates owned, valid, restricted actors, streams and a finalizer', async () => {
    const created = await createRun(h, NS, exampleRun(name));
    await eventually(async () => (await status(name))?.phase === 'Provisioning', 10_000, 'phase Provisioning');
    const run = (await h.k8s.getRun(NS, name))!;
    expect(run.metadata.finalizers).toContain(FINALIZER);
    const objs = owned(name);
    expect(objs.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual(
      [
        'ConfigMap/cpu-small-config',
        ...['learner', 'policy', 'sandbox', 'usersim'].map((g) => `Service/cpu-small-${g}`),
        ...['coordinator', 'policy', 'rollout', 'sandbox', 'usersim'].map((g) => `Deployment/cpu-small-${g}`),
        'StatefulSet/cpu-small-learner',
      ].sort(),
    );
    for (const o of objs) {
      expect(o.metadata.ownerReferences).toEqual([expect.objectContaining({ kind: 'TrainingRun', uid: created.metadata.uid, controller: true })]);
      validateObject(o);
      const podSpec = (o.spec as { template?: { spec: object } } | undefined)?.template?.spec;
      if (podSpec) expect(restrictedViolations(podSpec), `${o.kind} ${o.metadata.name}`).toEqual([]);
    }
    for (const stream of ['tasksStream', 'trajectoriesStream', 'eventsStream'] as const) await h.bus.streamInfo(runSubjects(name)[stream]);
    // The run coordinator: one pod at a time (Recreate), its settings from the run's ConfigMap, tasks from the run's Sandbox.
    const coordinator = api.get('apps/deployments', NS, 'cpu-small-coordinator')! as unknown as V1Deployment;
    expect(coordinator.spec).toMatchObject({ replicas: 1, strategy: { type: 'Recreate' } });
    const c = coordinator.spec!.template.spec!.containers[0]!;
    expect(c.args).toEqual(['serve', 'coordinator', '--config', '/etc/parley/run/coordinator.yaml', '--sandbox', 'nats', '--metrics-port', '9464']);
    expect(c.readinessProbe?.httpGet).toMatchObject({ path: '/readyz', port: 9464 });
    expect(c.env).toEqual(expect.arrayContaining([{ name: 'PARLEY_RUN', value: name }, { name: 'PARLEY_BUS_URL', value: h.config.busUrl }]));
    // Actors serve over NATS in the run as well as gRPC (probes, external clients); rollout workers call them over NATS.
    const container = (group: string) => (api.get('apps/deployments', NS, `cpu-small-${group}`)! as unknown as V1Deployment).spec!.template.spec!.containers.find((k) => k.name === group)!;
    for (const group of ['sandbox', 'usersim']) {
      const k = container(group);
      expect(k.args!.join(' '), group).toContain(`--nats $(PARLEY_BUS_URL) --run ${name}`);
      expect(k.readinessProbe?.grpc, group).toBeDefined();
    }
    expect(container('policy').env).toEqual(expect.arrayContaining([{ name: 'PARLEY_RUN', value: name }, { name: 'PARLEY_BUS_URL', value: h.config.busUrl }]));
    expect(container('rollout').args!.join(' ')).toContain('--sandbox nats --usersim nats --policy nats');
    const settings = parse((api.get('configmaps', NS, 'cpu-small-config')!.data as Record<string, string>)['coordinator.yaml']!);
    expect(coordinatorConfig(settings)).toMatchObject({ run: name, domain: 'local', trainSplit: 'train', groupSize: 4, groupsPerStep: 4, steps: 50, horizons: [6], seed: 0 });
    const st = (await status(name))!;
    expect(st.observedGeneration).toBe(1);
    expect(st.conditions!.map((c) => `${c.type}=${c.status}/${c.reason}`)).toEqual([
      'SpecValid=True/Valid',
      'ActorsReady=False/Provisioning',
      'Training=False/WaitingForActors',
      'Succeeded=False/InProgress',
      'Failed=False/NoFailure',
    ]);
  });

  it('runs once every pod is ready and reports progress from NATS events', async () => {
    api.runWorkloads();
    await eventually(async () => (await status(name))?.phase === 'Running', 10_000, 'phase Running');
    await publish(name, 'weights_published', { run: name, version: 1, step: 1 }, 'w1');
    await publish(name, 'step_completed', { run: name, step: 1, policyVersion: 1, trajectories: 16, rewardMean: 0.25, seconds: 2, metrics: { tokens: 4000, pass_rate: 0.2 } }, 's1');
    await publish(name, 'weights_loaded', { run: name, version: 1, actor: 'cpu-small-policy-0' }, 'l1');
    const st = await eventually(async () => {
      const s = await status(name);
      return s?.step === 1 && s.metrics?.weightSyncSeconds !== undefined ? s : undefined;
    }, 10_000, 'step 1 in status');
    expect(st).toMatchObject({ step: 1, policyVersion: 1, metrics: { rewardMean: 0.25, passRate: 0.2, episodes: 16, tokensPerSecond: 2000 } });
    expect(st.conditions!.find((c) => c.type === 'Training')).toMatchObject({ status: 'True', reason: 'Training' });
    expect(await metricValue(h.registry, 'parley_run_reward_mean', { run: name })).toBe(0.25);
    expect(await metricValue(h.registry, 'parley_run_episodes_total', { run: name })).toBe(16);
    expect(await metricValue(h.registry, 'parley_run_phase_info', { run: name, phase: 'Running' })).toBe(1);
  });

  it('writes status again after a 409 Conflict', async () => {
    let touched = false;
    const off = api.onRequest((method, path) => {
      if (!touched && method === 'PUT' && path.endsWith(`/trainingruns/${name}/status`)) {
        touched = true;
        // Another writer updates the run just before the controller's write lands: its resourceVersion is stale.
        const cur = api.get('parley.dev/trainingruns', NS, name)!;
        api.put('parley.dev/trainingruns', { ...cur, metadata: { ...cur.metadata, annotations: { ...(cur.metadata.annotations ?? {}), touched: 'yes' } } });
      }
    });
    const errorsBefore = (await metricValue(h.registry, 'parley_controller_reconciles_total', { result: 'error' })) ?? 0;
    await publish(name, 'step_completed', { run: name, step: 2, policyVersion: 2, trajectories: 16, rewardMean: 0.5, seconds: 2, metrics: {} }, 's2');
    await eventually(async () => (await status(name))?.step === 2, 10_000, 'step 2 after the conflict');
    off();
    expect(touched).toBe(true);
    expect(await metricValue(h.registry, 'parley_controller_reconciles_total', { result: 'error' })).toBeGreaterThan(errorsBefore);
  });

  it('suspends to zero replicas keeping state, and resumes', async () => {
    await editRun(h, NS, name, (r) => ((r.spec as { suspend?: boolean }).suspend = true));
    await eventually(async () => (await status(name))?.phase === 'Suspended', 10_000, 'Suspended');
    for (const d of api.list('apps/deployments', NS).filter((o) => o.metadata.labels?.['parley.dev/run'] === name)) expect((d.spec as { replicas: number }).replicas).toBe(0);
    expect((api.get('apps/statefulsets', NS, 'cpu-small-learner')!.spec as { replicas: number }).replicas).toBe(0);
    api.runWorkloads();
    const st = (await status(name))!;
    expect(st.step).toBe(2);
    expect(st.observedGeneration).toBe(2);
    expect(st.conditions!.find((c) => c.type === 'ActorsReady')?.reason).toBe('Suspended');
    await h.bus.streamInfo(runSubjects(name).trajectoriesStream);

    await editRun(h, NS, name, (r) => ((r.spec as { suspend?: boolean }).suspend = false));
    const deployments = () => api.list('apps/deployments', NS).filter((o) => o.metadata.labels?.['parley.dev/run'] === name);
    const wanted = (d: { metadata: { name?: string } }) => (d.metadata.name!.endsWith('-policy') ? 2 : 1);
    await eventually(() => deployments().every((d) => (d.spec as { replicas: number }).replicas === wanted(d)), 10_000, 'replicas restored');
    api.runWorkloads();
    await eventually(async () => (await status(name))?.phase === 'Running', 10_000, 'Running again');
    expect((await status(name))!.step).toBe(2);
  });

  it('succeeds once the learner completes spec.algorithm.steps and the final evaluation is published, scaling actors to zero', async () => {
    await publish(name, 'step_completed', { run: name, step: 50, policyVersion: 50, trajectories: 16, rewardMean: 0.9, seconds: 2, metrics: {} }, 's50');
    await eventually(async () => (await status(name))?.step === 50, 10_000, 'step 50');
    expect((await status(name))!.phase).not.toBe('Succeeded');
    await publish(name, 'eval_completed', { run: name, step: 50, final: true, policyVersion: 50, passRate: 0.4 }, 'e50');
    const st = await eventually(async () => ((await status(name))?.phase === 'Succeeded' ? status(name) : undefined), 10_000, 'Succeeded');
    expect(st!.completionTime).toBeDefined();
    expect(st!.conditions!.find((c) => c.type === 'Succeeded')).toMatchObject({ status: 'True', reason: 'StepsCompleted' });
    await eventually(() => (api.get('apps/statefulsets', NS, 'cpu-small-learner')!.spec as { replicas: number }).replicas === 0, 10_000, 'learner scaled to zero');
    const events = api.list('events', NS).filter((e) => (e.involvedObject as { name: string }).name === name).map((e) => e.reason);
    expect(events).toEqual(expect.arrayContaining(['Provisioning', 'Running', 'Suspended', 'Succeeded']));
  });

  it('deletes the streams, then the finalizer; owned objects go with the run', async () => {
    await deleteRun(h, NS, name);
    await eventually(async () => (await h.k8s.getRun(NS, name)) === null, 10_000, 'run gone');
    await expect(h.bus.streamInfo(runSubjects(name).eventsStream)).rejects.toMatchObject({ code: 'not_found' });
    expect(owned(name)).toEqual([]);
    expect(await metricValue(h.registry, 'parley_run_reward_mean', { run: name })).toBeUndefined();
  });
});

describe('specs the controller refuses', () => {
  it('marks an invalid spec Invalid, names the field, creates nothing, and recovers when fixed', async () => {
    const bad = exampleRun('cpu-small', (r) => {
      r.metadata.name = 'bad-spec';
      (r.spec as { algorithm: { groupSize: number } }).algorithm.groupSize = 0;
    });
    await createRun(h, NS, bad);
    const st = await eventually(async () => ((await status('bad-spec'))?.phase === 'Invalid' ? status('bad-spec') : undefined), 10_000, 'Invalid');
    const cond = st!.conditions!.find((c) => c.type === 'SpecValid')!;
    expect(cond).toMatchObject({ status: 'False', reason: 'InvalidSpec' });
    expect(cond.message).toContain('spec.algorithm.groupSize');
    expect(owned('bad-spec')).toEqual([]);
    await editRun(h, NS, 'bad-spec', (r) => ((r.spec as { algorithm: { groupSize: number } }).algorithm.groupSize = 4));
    await eventually(async () => (await status('bad-spec'))?.phase === 'Provisioning', 10_000, 'valid after the fix');
    await deleteRun(h, NS, 'bad-spec');
  });

  it('rejects names that cannot prefix the run\'s objects', async () => {
    const run: TrainingRun = exampleRun('cpu-small', (r) => (r.metadata.name = '9-starts-with-a-digit'));
    await createRun(h, NS, run);
    const st = await eventually(async () => status('9-starts-with-a-digit'), 10_000, 'status');
    expect(st.conditions!.find((c) => c.type === 'SpecValid')).toMatchObject({ status: 'False', reason: 'InvalidName' });
    await deleteRun(h, NS, '9-starts-with-a-digit');
  });

  it('never takes over an object of the same name that another owner holds, and prunes strays it owns', async () => {
    const run = await createRun(h, NS, exampleRun('cpu-small', (r) => (r.metadata.name = 'pruned')));
    await eventually(async () => (await status('pruned'))?.phase === 'Provisioning', 10_000, 'Provisioning');
    api.put('apps/deployments', {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'pruned-old-group', namespace: NS, labels: { 'parley.dev/run': 'pruned', 'app.kubernetes.io/managed-by': 'parley-controller' }, ownerReferences: [{ apiVersion: 'parley.dev/v1alpha1', kind: 'TrainingRun', name: 'pruned', uid: run.metadata.uid, controller: true }] },
      spec: { replicas: 1, selector: { matchLabels: { a: 'b' } }, template: { metadata: { labels: { a: 'b' } }, spec: { containers: [{ name: 'c', image: 'x' }] } } },
    });
    await eventually(() => api.get('apps/deployments', NS, 'pruned-old-group') === undefined, 10_000, 'stray pruned');
    await deleteRun(h, NS, 'pruned');
  });
});
