// One suite, three transports: the Sandbox served by grpc-js, over the in-process bus and over a real
// nats-server (request-reply, queue groups), answers the same way, bad input included.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bus } from '../services/core/bus/index.js';
import { connectBus } from '../services/core/bus/index.js';
import { createBusClient, serveOverBus } from '../services/core/bus-rpc.js';
import { ParleyError } from '../services/core/errors.js';
import { Sandbox } from '../services/core/gen/parley/v1/sandbox_pb.js';
import { createGrpcClient, startGrpcServer, type RunningGrpcServer, type ClientOf } from '../services/core/grpc.js';
import { Registry } from '../services/core/metrics.js';
import { loadDomains, resolveSandboxConfig, SandboxService } from '../services/sandbox/index.js';
import { haveNatsServer, startNatsServer, type NatsServer } from './fixtures/nats-server.js';
import { haveTau2, tau2DataDir } from './fixtures/tau2-data.js';

const transports = ['grpc', 'memory-bus', 'nats'] as const;
const canRun = haveTau2('mock');

for (const transport of transports) {
  const enabled = canRun && (transport !== 'nats' || haveNatsServer());
  (enabled ? describe : describe.skip)(`sandbox over ${transport}`, () => {
    let client: ClientOf<typeof Sandbox>;
    let service: SandboxService;
    const cleanups: (() => Promise<void> | void)[] = [];

    beforeAll(async () => {
      const config = resolveSandboxConfig({ dataDir: tau2DataDir(), domains: ['mock'], metricsPort: -1 });
      service = new SandboxService(config, loadDomains(config), new Registry());
      cleanups.push(() => service.stop());
      if (transport === 'grpc') {
        const server: RunningGrpcServer = await startGrpcServer({ port: 0, host: '127.0.0.1', services: [{ service: Sandbox, impl: service.impl }] });
        client = createGrpcClient(Sandbox, `127.0.0.1:${server.port}`);
        cleanups.push(() => server.close());
      } else {
        let bus: Bus;
        if (transport === 'nats') {
          const nats: NatsServer = await startNatsServer();
          cleanups.push(() => nats.cleanup());
          bus = await connectBus(nats.url);
        } else {
          bus = await connectBus();
        }
        cleanups.push(() => bus.close());
        // Two replicas in the queue group: each request is served once, by either.
        const a = await serveOverBus(bus, Sandbox, service.impl, { run: 'transport-test' });
        const b = await serveOverBus(bus, Sandbox, service.impl, { run: 'transport-test' });
        cleanups.push(() => a.close(), () => b.close());
        client = createBusClient(bus, Sandbox, { run: 'transport-test', defaultTimeoutMs: 5000 });
      }
    });
    afterAll(async () => {
      client?.close();
      for (const c of cleanups.reverse()) await c();
    });

    it('serves a session end to end', async () => {
      const { sessionId, tools } = await client.openSession({ domain: 'mock', taskId: 'update_task_1' });
      expect(tools.map((t: any) => t.name)).toContain('update_task_status');
      const r = await client.call({ sessionId, toolName: 'update_task_status', argumentsJson: '{"task_id":"task_1","status":"completed"}', callId: 'c1' });
      expect(r.error).toBe(false);
      expect(r.callId).toBe('c1');
      expect(JSON.parse(r.output).status).toBe('completed');
      const miss = await client.call({ sessionId, toolName: 'update_task_status', argumentsJson: '{"task_id":"task_9","status":"completed"}' });
      expect(miss).toMatchObject({ output: 'Error: Task task_9 not found', error: true });
      expect((await client.closeSession({ sessionId })).callsMade).toBe(2);
    });

    it('carries error codes and fields', async () => {
      const { sessionId } = await client.openSession({ domain: 'mock' });
      const e1 = await client.call({ sessionId, toolName: 'update_task_status', argumentsJson: '{"task_id":"task_1","status":"done"}' }).catch((e: unknown) => e);
      expect(e1).toBeInstanceOf(ParleyError);
      expect((e1 as ParleyError).code).toBe('invalid_argument');
      expect((e1 as ParleyError).message).toContain('status');
      const e2 = (await client.openSession({ domain: 'nope' }).catch((e: unknown) => e)) as ParleyError;
      expect(e2.code).toBe('not_found');
      const e3 = (await client.forkSession({ sessionId: 'missing', count: 1 }).catch((e: unknown) => e)) as ParleyError;
      expect(e3.code).toBe('not_found');
    });
  });
}
