// The weight follower on the in-process bus: in-order loads of every published version over both
// transports, the newest version first at start, redeliveries and bad events ended once.

import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createMemoryBus, type Bus } from '../core/bus/index.js';
import { runStreamConfigs, runSubjects } from '../core/run-subjects.js';
import { weightsPublishedMsgId, type WeightsLoadedEvent, type WeightsPublishedEvent } from '../core/weights-events.js';
import { publishWeightsArtifact } from '../learner/run-bus.js';
import { RecordingBackend } from './testing/recording-backend.js';
import { WeightFollower, type PolicyWeightsPort } from './weight-follower.js';
import { WeightsManager } from './weights.js';

const RUN = 'wsync';
const subjects = runSubjects(RUN);
const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

/** A replica's Policy as the follower sees it: LoadWeights and Info over a WeightsManager. */
function replicaPolicy(backend: RecordingBackend): PolicyWeightsPort {
  const weights = new WeightsManager(backend, { adapterPrefix: 'policy', keepAdapters: 2, initialVersion: 0 });
  return {
    loadWeights: async (r) => ({ version: BigInt((await weights.load(Number(r.version), r.uri, r.kind)).version) }),
    info: async () => ({ policyVersion: BigInt(weights.loaded.version) }),
  };
}

/** A SaveWeights-like folder for `version`. */
function weightsFolder(root: string, version: number, lora = false): string {
  const dir = join(root, `v${String(version).padStart(8, '0')}`);
  mkdirSync(join(dir, 'export'), { recursive: true });
  writeFileSync(join(dir, 'model.json'), JSON.stringify({ version }));
  if (lora) writeFileSync(join(dir, 'export', 'adapter_config.json'), '{}');
  return dir;
}

async function publishVersion(bus: Bus, root: string, version: number, transport: 'directory' | 'object_store', kind: 'full' | 'lora' = 'full', replacesInit = false): Promise<void> {
  const art = await publishWeightsArtifact(bus, RUN, weightsFolder(root, version, kind === 'lora'), version, { transport, maxBytes: 1 << 20 });
  const e: WeightsPublishedEvent = { run: RUN, version, step: version, kind, ...art, publishedAtMs: Date.now(), ...(replacesInit ? { replacesInit } : {}) };
  await bus.publish(subjects.weightsPublished, enc(e), { msgId: weightsPublishedMsgId(RUN, version) });
}

async function loadedEvents(bus: Bus): Promise<WeightsLoadedEvent[]> {
  const c = await bus.consumer({ stream: subjects.eventsStream, durable: `watch${Math.random().toString(36).slice(2, 8)}`, filterSubject: subjects.weightsLoaded, ackWaitMs: 5000, maxDeliver: 1, maxAckPending: 1000 });
  const out: WeightsLoadedEvent[] = [];
  for (let m = await c.next({ expiresMs: 1000 }); m; m = await c.next({ expiresMs: 1000 })) {
    out.push(JSON.parse(new TextDecoder().decode(m.data)) as WeightsLoadedEvent);
    m.ack();
  }
  await c.delete();
  return out;
}

describe('WeightFollower on the memory bus', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  async function setup() {
    const bus = createMemoryBus();
    cleanup.push(() => bus.close());
    await bus.ensureStream(runStreamConfigs(RUN).events);
    const root = mkdtempSync(join(tmpdir(), 'parley-wsync-'));
    const follower = (replica: string, backend = new RecordingBackend()) => {
      const f = new WeightFollower({ run: RUN, replica, cacheDir: join(root, 'cache', replica), ackWaitMs: 1000, retryBaseMs: 10, retryMaxMs: 50 }, { bus, policy: replicaPolicy(backend) });
      cleanup.push(() => f.stop());
      return { f, backend };
    };
    return { bus, root, follower };
  }

  it.each(['directory', 'object_store'] as const)('two replicas load every version in order over %s and report each once', async (transport) => {
    const { bus, root, follower } = await setup();
    const a = follower('policy-a');
    const b = follower('policy-b');
    await Promise.all([a.f.start(), b.f.start()]);
    expect(a.f.state).toBe('following');
    for (const v of [1, 2, 3]) await publishVersion(bus, join(root, 'learner'), v, transport);
    await Promise.all([a.f.waitForVersion(3, 10_000), b.f.waitForVersion(3, 10_000)]);
    expect(a.backend.versions).toEqual([1, 2, 3]);
    expect(b.backend.versions).toEqual([1, 2, 3]);
    if (transport === 'directory') {
      expect(a.backend.loads.map((l) => l.uri)).toEqual([1, 2, 3].map((v) => join(root, 'learner', `v${String(v).padStart(8, '0')}`)));
    } else {
      // Downloaded under the replica's cache, the newest two kept.
      const last = a.backend.loads.at(-1)!.uri;
      expect(last.startsWith(join(root, 'cache', 'policy-a'))).toBe(true);
      expect(JSON.parse(readFileSync(join(last, 'model.json'), 'utf8'))).toEqual({ version: 3 });
      expect(readdirSync(join(root, 'cache', 'policy-a')).sort()).toEqual(['v00000002', 'v00000003']);
    }
    const loaded = await vi.waitFor(async () => {
      const l = await loadedEvents(bus);
      expect(l).toHaveLength(6);
      return l;
    }, { timeout: 10_000 });
    expect(loaded.map((e) => `${e.replica}/${e.version}`).sort()).toEqual(['policy-a/1', 'policy-a/2', 'policy-a/3', 'policy-b/1', 'policy-b/2', 'policy-b/3']);
    for (const e of loaded) {
      expect(e.run).toBe(RUN);
      expect(e.seconds).toBeGreaterThanOrEqual(0);
      expect(e.loadedAtMs).toBeGreaterThan(0);
    }
  });

  it('loads version 0 only when it replaces the fresh Init (a cold start), and reports it', async () => {
    const { bus, root, follower } = await setup();
    await publishVersion(bus, join(root, 'plain'), 0, 'directory');
    const plain = follower('plain');
    await plain.f.start();
    expect(plain.backend.versions).toEqual([]);
    // A second run whose learner started from a cold start: version 0 is loaded once, then 1.
    const other = createMemoryBus();
    cleanup.push(() => other.close());
    await other.ensureStream(runStreamConfigs(RUN).events);
    const cold = new RecordingBackend();
    const f = new WeightFollower({ run: RUN, replica: 'cold', cacheDir: join(root, 'cache', 'cold'), awaitFirstPublish: true, retryBaseMs: 10, retryMaxMs: 50 }, { bus: other, policy: replicaPolicy(cold) });
    cleanup.push(() => f.stop());
    let ready = false;
    const starting = f.start().then(() => (ready = true));
    await new Promise((r) => setTimeout(r, 1500));
    // Nothing published yet: the replica waits instead of serving its fresh Init.
    expect(ready).toBe(false);
    await publishVersion(other, join(root, 'cold-learner'), 0, 'directory', 'full', true);
    await starting;
    expect(cold.versions).toEqual([0]);
    await publishVersion(other, join(root, 'cold-learner'), 1, 'directory');
    await f.waitForVersion(1, 10_000);
    expect(cold.versions).toEqual([0, 1]);
    const loaded = await vi.waitFor(async () => {
      const l = await loadedEvents(other);
      expect(l).toHaveLength(2);
      return l;
    }, { timeout: 10_000 });
    expect(loaded.map((e) => e.version)).toEqual([0, 1]);
  });

  it('a replica started late loads the newest version before it is ready, then follows', async () => {
    const { bus, root, follower } = await setup();
    await publishVersion(bus, root, 1, 'directory');
    await publishVersion(bus, root, 2, 'object_store');
    const late = follower('late');
    await late.f.start();
    expect(late.f.version).toBe(2);
    expect(late.backend.versions).toEqual([2]);
    await publishVersion(bus, root, 3, 'directory');
    await late.f.waitForVersion(3, 10_000);
    expect(late.backend.versions).toEqual([2, 3]);
  });

  it('a restarted follower resumes its durable and loads nothing twice', async () => {
    const { bus, root, follower } = await setup();
    const backend = new RecordingBackend();
    const first = follower('r', backend);
    await first.f.start();
    await publishVersion(bus, root, 1, 'directory');
    await first.f.waitForVersion(1, 10_000);
    await first.f.stop();
    await publishVersion(bus, root, 2, 'directory');
    const again = follower('r', backend);
    await again.f.start();
    await publishVersion(bus, root, 3, 'directory');
    await again.f.waitForVersion(3, 10_000);
    expect(backend.versions).toEqual([1, 2, 3]);
  });

  it('terminates malformed events and loads that cannot succeed, retries the ones that can, and moves on', async () => {
    const { bus, root, follower } = await setup();
    const r = follower('r', new RecordingBackend({ adapters: false }));
    r.backend.failOnce.set(3, 'unavailable');
    await r.f.start();
    await bus.publish(subjects.weightsPublished, new TextEncoder().encode('not json'));
    await bus.publish(subjects.weightsPublished, enc({ run: RUN, version: 'x', uri: '/w', kind: 'full', transport: 'directory' }));
    await publishVersion(bus, root, 1, 'directory');
    await publishVersion(bus, root, 2, 'directory', 'lora'); // this backend has no adapters: unimplemented
    await publishVersion(bus, root, 3, 'directory');
    await r.f.waitForVersion(3, 10_000);
    expect(r.backend.versions).toEqual([1, 3]);
    const durable = await bus.consumer({ stream: subjects.eventsStream, durable: 'policy-r', filterSubject: subjects.weightsPublished, ackWaitMs: 1000, maxDeliver: 1_000_000, maxAckPending: 1 });
    await vi.waitFor(async () => expect(await durable.info()).toEqual({ pending: 0, ackPending: 0 }));
  });

  it('hands a LoRA adapter server the PEFT folder inside the weights folder', async () => {
    const { bus, root, follower } = await setup();
    const r = follower('r');
    await r.f.start();
    await publishVersion(bus, root, 1, 'object_store', 'lora');
    await r.f.waitForVersion(1, 10_000);
    expect(r.backend.loads[0]).toMatchObject({ version: 1, kind: 'lora' });
    expect(r.backend.loads[0]!.uri.endsWith('/export')).toBe(true);
  });
});
