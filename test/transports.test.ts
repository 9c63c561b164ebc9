// One suite, three transports: the Sandbox, the UserSimulator (scripted) and the Policy (over the vLLM
// test double), each served by grpc-js, over the in-process bus and over a real nats-server
// (request-reply, queue groups), answer the same way, bad input included (code and field alike).

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { GenService, GenServiceMethods } from '@bufbuild/protobuf/codegenv2';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Bus } from '../services/core/bus/index.js';
import { connectBus } from '../services/core/bus/index.js';
import { createBusClient, serveOverBus } from '../services/core/bus-rpc.js';
import { ParleyError } from '../services/core/errors.js';
import { Role } from '../services/core/gen/parley/v1/chat_pb.js';
import { Policy } from '../services/core/gen/parley/v1/policy_pb.js';
import { Sandbox } from '../services/core/gen/parley/v1/sandbox_pb.js';
import { UserSimulator } from '../services/core/gen/parley/v1/usersim_pb.js';
import { createGrpcClient, startGrpcServer, type ClientOf, type ServiceClient, type ServiceImpl } from '../services/core/grpc.js';
import { createLogger } from '../services/core/logger.js';
import { Registry } from '../services/core/metrics.js';
import { createBackend, createPolicyService, loadChatModel, policyMetrics, resolvePolicyConfig, type PolicyBackend } from '../services/policy/index.js';
import { loadDomains, resolveSandboxConfig, SandboxService } from '../services/sandbox/index.js';
import { parseUserSimConfig, UserSimulatorService } from '../services/usersim/index.js';
import { haveNatsServer, startNatsServer, type NatsServer } from './fixtures/nats-server.js';
import { haveTau2, tau2DataDir, tau2DomainDir } from './fixtures/tau2-data.js';
import { QWEN3_MODEL_DIR, startVllmDouble, type VllmDouble } from './fixtures/vllm-double.js';

const transports = ['grpc', 'memory-bus', 'nats'] as const;
type Transport = (typeof transports)[number];
const RUN = 'transport-test';
const logger = createLogger('transports-test', 'silent');

/** The rejection of `p` as a ParleyError (fails the test when `p` resolves). */
async function failure(p: Promise<unknown>): Promise<ParleyError> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(e, 'expected a rejection').toBeInstanceOf(ParleyError);
  return e as ParleyError;
}

/**
 * One transport for a suite: serve(service, impl) returns a client that reaches `impl` over it. The bus
 * ones serve two replicas in the service's queue group: each request is answered once, by either.
 */
function transportFor(transport: Transport) {
  let bus: Bus | undefined;
  let nats: NatsServer | undefined;
  const cleanups: (() => Promise<void> | void)[] = [];
  beforeAll(async () => {
    if (transport === 'nats') nats = await startNatsServer();
    if (transport !== 'grpc') bus = await connectBus(nats?.url);
  });
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
    await bus?.close();
    await nats?.cleanup();
  });
  return {
    async serve<M extends GenServiceMethods>(service: GenService<M>, impl: ServiceImpl<M>): Promise<ServiceClient<M>> {
      let client: ServiceClient<M>;
      if (transport === 'grpc') {
        const server = await startGrpcServer({ port: 0, host: '127.0.0.1', services: [{ service, impl }] });
        cleanups.push(() => server.close());
        client = createGrpcClient(service, `127.0.0.1:${server.port}`);
      } else {
        for (let i = 0; i < 2; i++) {
          const served = await serveOverBus(bus!, service, impl, { run: RUN });
          cleanups.push(() => served.close());
        }
        client = createBusClient(bus!, service, { run: RUN, defaultTimeoutMs: 10_000 });
      }
      cleanups.push(() => client.close());
      return client;
    },
  };
}

for (const transport of transports) {
  const enabled = transport !== 'nats' || haveNatsServer();
  (enabled ? describe : describe.skip)(`over ${transport}`, () => {
    const link = transportFor(transport);

    (haveTau2('mock') ? describe : describe.skip)('Sandbox', () => {
      let client: ClientOf<typeof Sandbox>;
      let service: SandboxService;
      beforeAll(async () => {
        const config = resolveSandboxConfig({ dataDir: tau2DataDir(), domains: ['mock'], metricsPort: -1 }, {});
        service = new SandboxService(config, loadDomains(config), new Registry());
        client = await link.serve(Sandbox, service.impl);
      });
      afterAll(() => service?.stop());

      it('serves a session end to end', async () => {
        const { sessionId, tools } = await client.openSession({ domain: 'mock', taskId: 'update_task_1' });
        expect(tools.map((t) => t.name)).toContain('update_task_status');
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
        const e1 = await failure(client.call({ sessionId, toolName: 'update_task_status', argumentsJson: '{"task_id":"task_1","status":"done"}' }));
        expect(e1.code).toBe('invalid_argument');
        expect(e1.message).toContain('status');
        expect(await failure(client.openSession({ domain: 'nope' }))).toMatchObject({ code: 'not_found', field: 'domain' });
        expect(await failure(client.openSession({ domain: '' }))).toMatchObject({ code: 'invalid_argument', field: 'domain' });
        expect((await failure(client.forkSession({ sessionId: 'missing', count: 1 }))).code).toBe('not_found');
      });
    });

    (haveTau2('retail') ? describe : describe.skip)('UserSimulator (scripted)', () => {
      let client: ClientOf<typeof UserSimulator>;
      let service: UserSimulatorService;
      const task = JSON.stringify((JSON.parse(readFileSync(resolve(tau2DomainDir('retail'), 'tasks.json'), 'utf8')) as { id: string }[]).find((t) => t.id === '0'));
      const agent = (content: string) => ({ role: Role.ASSISTANT, content });
      beforeAll(async () => {
        service = new UserSimulatorService({ config: parseUserSimConfig({ mode: 'scripted' }, {}), registry: new Registry(), logger });
        client = await link.serve(UserSimulator, service);
      });
      afterAll(() => service?.close());

      it('plays a task to ###STOP###', async () => {
        const first = await client.start({ conversationId: 'a', domain: 'retail', taskId: '0', taskJson: task });
        expect(first.message?.content).toMatch(/^Hi! I received my order #W2378156/);
        expect(first.message?.role).toBe(Role.USER);
        const id = await client.reply({ conversationId: 'a', agentMessage: agent('Could you tell me your name and zip code?') });
        expect(id.message?.content).toBe('My name is Yusuf Rossi. My zip code is 19122.');
        const done = await client.reply({ conversationId: 'a', agentMessage: agent('The items have been exchanged. Anything else?') });
        expect(done.stop).toBeGreaterThan(0);
      });

      it('carries error codes and fields', async () => {
        expect(await failure(client.start({ conversationId: '', taskJson: task }))).toMatchObject({ code: 'invalid_argument', field: 'conversation_id' });
        expect(await failure(client.reply({ conversationId: 'never', agentMessage: agent('hello') }))).toMatchObject({ code: 'not_found' });
        await client.start({ conversationId: 'b', taskJson: task });
        const wrongRole = await failure(client.reply({ conversationId: 'b', agentMessage: { role: Role.USER, content: 'x' } }));
        expect(wrongRole).toMatchObject({ code: 'invalid_argument', message: expect.stringMatching(/^agent_message.role/) });
        expect((await failure(client.start({ conversationId: 'b', taskJson: task, greeting: 'Different' }))).code).toBe('already_exists');
      });
    });

    describe('Policy (vLLM test double)', () => {
      let client: ClientOf<typeof Policy>;
      let vllm: VllmDouble;
      let backend: PolicyBackend;
      beforeAll(async () => {
        vllm = await startVllmDouble({ complete: () => 'How can I help?' });
        const config = resolvePolicyConfig({ modelDir: QWEN3_MODEL_DIR, backendUrl: vllm.url, modelName: vllm.modelName, maxRetries: 0, maxContextTokens: 4096 }, {});
        backend = createBackend(config);
        const service = createPolicyService({ config, model: loadChatModel(config.modelDir), backend, metrics: policyMetrics(new Registry()), logger });
        client = await link.serve(Policy, service);
      });
      afterAll(async () => {
        await backend?.close?.();
        await vllm?.close();
      });
      beforeEach(() => vllm.reset());

      it('generates token-in-token-out and answers Info', async () => {
        expect(await client.info({})).toMatchObject({ model: vllm.modelName, backend: 'openai-compatible', maxContextTokens: 4096, policyVersion: 0n });
        const r = await client.generate({ conversationId: 'ep-1', messages: [{ role: Role.USER, content: 'hello' }] });
        expect(r.finishReason).toBe('stop');
        expect(r.message?.content).toBe('How can I help?');
        expect(vllm.requests[0]!.body.prompt).toEqual(r.promptTokenIds);
        expect(r.completionLogprobs).toHaveLength(r.completionTokenIds.length);
      });

      it('carries error codes and fields', async () => {
        const user = { role: Role.USER, content: 'hi' };
        expect(await failure(client.generate({ conversationId: 'x', messages: [] }))).toMatchObject({ code: 'invalid_argument', field: 'messages' });
        expect(await failure(client.generate({ conversationId: 'x', messages: [user], sampling: { topP: 1.5 } }))).toMatchObject({
          code: 'invalid_argument',
          field: 'sampling.top_p',
        });
        expect(await failure(client.generate({ conversationId: 'x', messages: [user], tools: [{ name: 'f', parametersJson: '{oops' }] }))).toMatchObject({
          code: 'invalid_argument',
          message: expect.stringContaining('tools[0].parameters_json'),
        });
        expect((await failure(client.loadWeights({ version: 1n, uri: '/ckpt/v1', kind: 'full' }))).code).toBe('unimplemented');
        expect(vllm.requests).toHaveLength(0);
      });
    });
  });
}
