// Weight sync over a real nats-server: policy replicas served with servePolicy (busUrl + run) and a
// recording backend follow the run's weights_published events through their own durables, load every
// version once and in order over both transports, load the newest first when they start late, load
// nothing twice after a crash, and terminate malformed events.

import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { connectBus, type Bus } from '../services/core/bus/index.js';
import { Policy } from '../services/core/gen/parley/v1/policy_pb.js';
import { createLocalClient } from '../services/core/local-client.js';
import { createLogger } from '../services/core/logger.js';
import { Registry } from '../services/core/metrics.js';
import { runStreamConfigs, runSubjects } from '../services/core/run-subjects.js';
import { weightsPublishedMsgId, type WeightsLoadedEvent, type WeightsPublishedEvent } from '../services/core/weights-events.js';
import { publishWeightsArtifact } from '../services/learner/run-bus.js';
import { WeightFollower, createPolicyService, loadChatModel, servePolicy, type RunningPolicy } from '../services/policy/index.js';
import { RecordingBackend } from '../services/policy/testing/recording-backend.js';
import { haveNatsServer, startNatsServer, type NatsServer } from './fixtures/nats-server.js';
import { QWEN3_MODEL_DIR } from './fixtures/vllm-double.js';

const logger = createLogger('weight-sync-test', 'silent');
const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
const root = mkdtempSync(join(tmpdir(), 'parley-weight-sync-'));

/** A SaveWeights-like folder of `version` under the learner's folder of `run`. */
function weightsFolder(run: string, version: number): string {
  const dir = join(root, run, 'learner', `v${String(version).padStart(8, '0')}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'model.json'), JSON.stringify({ version }));
  return dir;
}

async function publishVersion(bus: Bus, run: string, version: number, transport: 'directory' | 'object_store'): Promise<void> {
  const art = await publishWeightsArtifact(bus, run, weightsFolder(run, version), version, { transport, maxBytes: 1 << 20 });
  const e: WeightsPublishedEvent = { run, version, step: version, kind: 'full', ...art, publishedAtMs: Date.now() };
  await bus.publish(runSubjects(run).weightsPublished, enc(e), { msgId: weightsPublishedMsgId(run, version) });
}

/** Every weights_loaded stored for `run`, read through a throwaway durable. */
async function loadedEvents(bus: Bus, run: string): Promise<WeightsLoadedEvent[]> {
  const s = runSubjects(run);
  const c = await bus.consumer({ stream: s.eventsStream, durable: `watch-${Math.random().toString(36).slice(2, 8)}`, filterSubject: s.weightsLoaded, ackWaitMs: 5000, maxDeliver: 1, maxAckPending: 1000 });
  const out: WeightsLoadedEvent[] = [];
  for (let m = await c.next({ expiresMs: 1000 }); m; m = await c.next({ expiresMs: 1000 })) {
    out.push(JSON.parse(new TextDecoder().decode(m.data)) as WeightsLoadedEvent);
    m.ack();
  }
  await c.delete();
  return out;
}

const keys = (events: WeightsLoadedEvent[]) => events.map((e) => `${e.replica}/${e.version}`).sort();

(haveNatsServer() ? describe : describe.skip)('weight sync over a real nats-server', () => {
  let nats: NatsServer;
  let bus: Bus;

  beforeAll(async () => {
    nats = await startNatsServer();
    bus = await connectBus(nats.url);
  });
  afterAll(async () => {
    await bus?.close();
    await nats?.cleanup();
  });

  async function replica(run: string, name: string, backend = new RecordingBackend()): Promise<{ policy: RunningPolicy; backend: RecordingBackend; registry: Registry }> {
    const registry = new Registry();
    const policy = await servePolicy({
      config: {
        modelDir: QWEN3_MODEL_DIR,
        modelName: 'test-model',
        backend: 'trainer-engine',
        engineAddress: '127.0.0.1:9',
        host: '127.0.0.1',
        port: 0,
        metricsPort: 0,
        busUrl: nats.url,
        run,
        replica: name,
        weightsCacheDir: join(root, run, 'cache', name),
      },
      backend,
      env: {},
      registry,
      logger,
    });
    return { policy, backend, registry };
  }

  it.each(['directory', 'object_store'] as const)('two replicas load versions 1..3 in order over %s and report each load once', async (transport) => {
    const run = `sync-${transport.replace('_', '-')}`;
    const a = await replica(run, 'policy-a');
    const b = await replica(run, 'policy-b');
    try {
      for (const v of [1, 2, 3]) await publishVersion(bus, run, v, transport);
      await Promise.all([a.policy.weights!.waitForVersion(3, 20_000), b.policy.weights!.waitForVersion(3, 20_000)]);
      expect(a.backend.versions).toEqual([1, 2, 3]);
      expect(b.backend.versions).toEqual([1, 2, 3]);
      expect((await createLocalClient(Policy, a.policy.service).info({})).policyVersion).toBe(3n);
      const loaded = await vi.waitFor(async () => {
        const l = await loadedEvents(bus, run);
        expect(l).toHaveLength(6);
        return l;
      }, { timeout: 20_000 });
      expect(keys(loaded)).toEqual(['policy-a/1', 'policy-a/2', 'policy-a/3', 'policy-b/1', 'policy-b/2', 'policy-b/3']);
      expect(loaded.every((e) => e.run === run && e.seconds >= 0 && e.loadedAtMs > 0)).toBe(true);
      const text = await a.registry.metrics();
      expect(text).toMatch(/parley_policy_weights_version 3/);
      expect(text).toMatch(/parley_policy_weight_load_seconds_count 3/);
    } finally {
      await a.policy.close();
      await b.policy.close();
    }
  });

  it('a replica started after version 2 loads it before it serves, then follows version 3', async () => {
    const run = 'sync-late';
    await bus.ensureStream(runStreamConfigs(run).events);
    await publishVersion(bus, run, 1, 'directory');
    await publishVersion(bus, run, 2, 'object_store');
    const late = await replica(run, 'policy-late');
    try {
      // servePolicy resolved: the replica is ready, and already serves version 2.
      expect(late.policy.weights!.version).toBe(2);
      expect(late.backend.versions).toEqual([2]);
      await publishVersion(bus, run, 3, 'directory');
      await late.policy.weights!.waitForVersion(3, 20_000);
      expect(late.backend.versions).toEqual([2, 3]);
    } finally {
      await late.policy.close();
    }
  });

  it('a follower that crashes mid-load is replaced without loading a version twice', async () => {
    const run = 'sync-crash';
    await bus.ensureStream(runStreamConfigs(run).events);
    const backend = new RecordingBackend();
    const service = createPolicyService({
      config: {
        modelName: 'test-model', maxContextTokens: 4096, defaultMaxTokens: 16, enableThinking: false, adapterPrefix: 'policy', keepAdapters: 2,
        initialPolicyVersion: 0, prefixCacheConversations: 10, prefixCacheTokens: 10_000, driftCheckRate: 0,
      },
      model: loadChatModel(QWEN3_MODEL_DIR),
      backend,
    });
    const policy = createLocalClient(Policy, service);
    const opts = { run, replica: 'policy-crash', ackWaitMs: 1000, retryBaseMs: 10, retryMaxMs: 100 };
    let release!: () => void;
    let entered!: () => void;
    const inLoad = new Promise<void>((r) => (entered = r));
    backend.gate = (v) => (v === 2 ? (entered(), new Promise<void>((r) => (release = r))) : Promise.resolve());

    const crashedBus = await connectBus(nats.url);
    const first = new WeightFollower(opts, { bus: crashedBus, policy, logger });
    await first.start();
    await publishVersion(bus, run, 1, 'directory');
    await publishVersion(bus, run, 2, 'directory');
    await inLoad;
    await crashedBus.close(); // the connection dies with version 2 in hand, unacknowledged
    release();
    await first.stop();
    expect(backend.versions).toEqual([1, 2]);

    const secondBus = await connectBus(nats.url);
    const second = new WeightFollower(opts, { bus: secondBus, policy, logger });
    try {
      await second.start();
      // Version 2 comes back after its ack wait; the replica serves it already, so it only reports it.
      await publishVersion(bus, run, 3, 'directory');
      await second.waitForVersion(3, 20_000);
      expect(backend.versions).toEqual([1, 2, 3]);
      const loaded = await vi.waitFor(async () => {
        const l = await loadedEvents(bus, run);
        expect(l).toHaveLength(3);
        return l;
      }, { timeout: 20_000 });
      expect(keys(loaded)).toEqual(['policy-crash/1', 'policy-crash/2', 'policy-crash/3']);
    } finally {
      await second.stop({ deleteDurable: true });
      await secondBus.close();
    }
  });

  it('terminates a malformed event instead of redelivering it, and loads the next version', async () => {
    const run = 'sync-malformed';
    const r = await replica(run, 'policy-m');
    try {
      const s = runSubjects(run);
      await bus.publish(s.weightsPublished, new TextEncoder().encode('{not json'));
      await bus.publish(s.weightsPublished, enc({ run, version: -1, uri: '/nowhere', kind: 'full', transport: 'directory' }));
      await bus.publish(s.weightsPublished, enc({ run, version: 1, uri: '/nowhere', kind: 'everything', transport: 'directory' }));
      await publishVersion(bus, run, 1, 'directory');
      await r.policy.weights!.waitForVersion(1, 20_000);
      expect(r.backend.versions).toEqual([1]);
      const durable = await bus.consumer({ stream: s.eventsStream, durable: 'policy-policy-m', filterSubject: s.weightsPublished, ackWaitMs: 60_000, maxDeliver: 1_000_000, maxAckPending: 1 });
      await vi.waitFor(async () => expect(await durable.info()).toEqual({ pending: 0, ackPending: 0 }), { timeout: 10_000 });
    } finally {
      await r.policy.close();
    }
  });
});
