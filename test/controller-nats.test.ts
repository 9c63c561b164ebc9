// The controller's NATS side against a real nats-server: a run's streams and KV buckets are created,
// its events reach the status, and deleting the run deletes every stream (KV and object store included).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectBus, type Bus } from '../services/core/bus/index.js';
import { runSubjects } from '../services/core/run-subjects.js';
import { runStreamNames } from '../services/controller/nats-provision.js';
import { createRun, deleteRun, eventually, exampleRun, startHarness, type Harness } from '../services/controller/testing/harness.js';
import { startKubeApiDouble, type KubeApiDouble } from './fixtures/kube-api-double.js';
import { haveNatsServer, startNatsServer, type NatsServer } from './fixtures/nats-server.js';

const NS = 'team-f';
const have = haveNatsServer();

describe.skipIf(!have)('with a real nats-server', () => {
  let nats: NatsServer;
  let api: KubeApiDouble;
  let h: Harness;
  let observer: Bus;

  beforeAll(async () => {
    nats = await startNatsServer();
    api = await startKubeApiDouble();
    h = await startHarness(api.kubeConfig(), {}, await connectBus(nats.url));
    observer = await connectBus(nats.url);
  });

  afterAll(async () => {
    await observer?.close();
    await h?.close();
    await api?.stop();
    await nats?.cleanup();
  });

  it('provisions the run, follows its events, and deletes every stream with the run', async () => {
    const name = 'on-nats';
    await createRun(h, NS, exampleRun('cpu-small', (r) => (r.metadata.name = name)));
    await eventually(async () => (await h.k8s.getRun(NS, name))?.status?.phase, 10_000, 'reconciled');
    const s = runSubjects(name);
    for (const stream of [s.tasksStream, s.trajectoriesStream, s.eventsStream]) expect((await observer.streamInfo(stream)).name).toBe(stream);
    await (await observer.kv(s.stateBucket)).put('step', new TextEncoder().encode('0'));
    await (await observer.objects(s.weightsBucket)).put('v00000001/adapter.bin', new Uint8Array([1, 2, 3]));

    const event = { run: name, step: 3, policyVersion: 3, trajectories: 32, rewardMean: 0.5, seconds: 4, metrics: { tokens: 8000 } };
    await observer.publish(s.event('step_completed'), new TextEncoder().encode(JSON.stringify(event)), { msgId: 'step-3' });
    await eventually(async () => (await h.k8s.getRun(NS, name))?.status?.step === 3, 10_000, 'step 3 from NATS');
    expect((await h.k8s.getRun(NS, name))!.status!.metrics).toMatchObject({ tokensPerSecond: 2000, episodes: 32 });

    for (const stream of runStreamNames(name)) expect((await observer.streamInfo(stream)).name, stream).toBe(stream);
    await deleteRun(h, NS, name);
    await eventually(async () => (await h.k8s.getRun(NS, name)) === null, 10_000, 'run deleted');
    for (const stream of runStreamNames(name)) {
      await expect(observer.streamInfo(stream), stream).rejects.toMatchObject({ code: 'not_found' });
    }
  });
});
