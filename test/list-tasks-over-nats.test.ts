// ListTasks over a real nats-server, whose messages carry at most max_payload (1 MiB): a domain with
// thousands of tasks is listed by id only or by the ids asked for, and an answer too large for the bus
// is RESOURCE_EXHAUSTED saying so (it used to be a silent timeout that stalled a run's coordinator).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectBus, type Bus } from '../services/core/bus/index.js';
import { createBusClient, serveOverBus } from '../services/core/bus-rpc.js';
import { Sandbox } from '../services/core/gen/parley/v1/sandbox_pb.js';
import { Registry } from '../services/core/metrics.js';
import { heldOutTasks } from '../services/eval/index.js';
import { loadDomains, resolveSandboxConfig, SandboxService } from '../services/sandbox/index.js';
import { generateLocalDomain } from '../services/sandbox/domains/local/index.js';
import { haveNatsServer, startNatsServer, type NatsServer } from './fixtures/nats-server.js';

const RUN = 'list-test';

describe.runIf(haveNatsServer())('ListTasks over NATS (real nats-server, 1 MiB messages)', () => {
  let nats: NatsServer;
  let bus: Bus;
  let root: string;
  let sandbox: SandboxService;
  let served: { close(): Promise<void> };

  beforeAll(async () => {
    nats = await startNatsServer();
    bus = await connectBus(nats.url);
    root = mkdtempSync(join(tmpdir(), 'parley-list-'));
    // The demo's size: 12,000 train tasks, whose full list is several MB.
    generateLocalDomain({ seed: 1, trainTasks: 12_000, evalTasks: 200, customers: 800, outDir: join(root, 'local') });
    const cfg = resolveSandboxConfig({ dataDir: root, domains: ['local'], metricsPort: -1 });
    sandbox = new SandboxService(cfg, loadDomains(cfg), new Registry());
    served = await serveOverBus(bus, Sandbox, sandbox.impl, { run: RUN });
  }, 60_000);

  afterAll(async () => {
    await served?.close();
    sandbox?.stop();
    await bus?.close();
    await nats?.cleanup();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('lists a large split by id, answers the tasks asked for in order, and refuses an answer too large for the bus', async () => {
    const client = createBusClient(bus, Sandbox, { run: RUN, defaultTimeoutMs: 20_000 });
    const ids = await client.listTasks({ domain: 'local', split: 'train', idsOnly: true });
    expect(ids.tasks).toHaveLength(12_000);
    expect(ids.tasks.every((t) => t.scenario === '' && t.taskJson === '')).toBe(true);

    const some = await client.listTasks({ domain: 'local', split: '', taskIds: [ids.tasks[7]!.id, ids.tasks[3]!.id] });
    expect(some.tasks.map((t) => t.id)).toEqual([ids.tasks[7]!.id, ids.tasks[3]!.id]);
    expect(JSON.parse(some.tasks[0]!.taskJson).id).toBe(ids.tasks[7]!.id);
    expect(some.tasks[0]!.scenario.length).toBeGreaterThan(0);

    await expect(client.listTasks({ domain: 'local', split: '', taskIds: ['nope'] })).rejects.toMatchObject({ code: 'not_found', field: 'task_ids[0]' });

    const started = Date.now();
    const err = await client.listTasks({ domain: 'local', split: 'train' }).then(() => undefined, (e: unknown) => e);
    expect(err).toMatchObject({ code: 'resource_exhausted' });
    expect((err as Error).message).toMatch(/more than the bus carries \(max_payload 1048576\)/);
    expect(Date.now() - started).toBeLessThan(15_000);

    // The held-out evaluator's way: ids, then the tasks in chunks.
    const held = await heldOutTasks(client, { domain: 'local', split: 'test', maxTasks: 120 });
    expect(held.taskIds).toHaveLength(120);
    expect([...held.info.keys()]).toEqual(held.taskIds);
    await client.close();
  }, 60_000);
});
