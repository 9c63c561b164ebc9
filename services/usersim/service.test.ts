// The UserSimulator service on a real gRPC port: scripted and LLM modes, bad input that leaves other
// conversations untouched, limits (count, idle TTL, turns), config errors, /metrics, and the CLI entry.

import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { create } from '@bufbuild/protobuf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeTau2, tau2DomainDir } from '../../test/fixtures/tau2-data.js';
import { ParleyError, Registry, createGrpcClient, createLogger, type ServiceClient } from '../core/index.js';
import { Role } from '../core/gen/parley/v1/chat_pb.js';
import { EndRequestSchema, ReplyRequestSchema, StartRequestSchema, UserSimulator } from '../core/gen/parley/v1/usersim_pb.js';
import { serveUserSimulatorCommand, usersimCommand } from './cli.js';
import { parseUserSimConfig } from './config.js';
import { UserSimulatorService, serveUserSimulator, type RunningUserSimulator, type UserSimulatorMethods } from './index.js';
import { renderUserScenario } from './scenario.js';
import { ChatCompletionsDouble, apiError, completion } from './test-support/chat-completions-double.js';
import { TaskSchema } from './task-schema.js';
import { UserStop } from './types.js';

const logger = createLogger('usersim-test', 'silent');
const taskJson = (domain: string, id: string) =>
  JSON.stringify((JSON.parse(readFileSync(resolve(tau2DomainDir(domain), 'tasks.json'), 'utf8')) as Array<{ id: string }>).find((t) => t.id === id));
const agent = (content: string) => ({ role: Role.ASSISTANT, content });

async function codeOf(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e, 'expected a rejection').toBeInstanceOf(ParleyError);
  return { code: (e as ParleyError).code, message: (e as ParleyError).message };
}

describeTau2('retail', 'UserSimulator over gRPC, scripted mode', () => {
  let server: RunningUserSimulator;
  let client: ServiceClient<UserSimulatorMethods>;
  beforeAll(async () => {
    server = await serveUserSimulator({ config: { mode: 'scripted', host: '127.0.0.1', port: 0, metricsPort: -1 }, logger, registry: new Registry() });
    client = createGrpcClient(UserSimulator, `127.0.0.1:${server.port}`);
  });
  afterAll(async () => {
    client.close();
    await server.close();
  });

  it('plays a task while bad requests around it fail cleanly and leave it untouched', async () => {
    const start = { conversationId: 'a', domain: 'retail', taskId: '0', taskJson: taskJson('retail', '0'), greeting: 'Hi! How can I help you today?' };
    const first = await client.start(start);
    expect(first.message?.content).toMatch(/^Hi! I received my order #W2378156/);
    expect(first.message?.role).toBe(Role.USER);

    expect(await codeOf(client.reply({ conversationId: 'nope', agentMessage: agent('hello') }))).toMatchObject({ code: 'not_found', message: /never started/ });
    expect(await codeOf(client.start({ ...start, conversationId: '' }))).toMatchObject({ code: 'invalid_argument', message: /conversation_id/ });
    expect(await codeOf(client.start({ conversationId: 'b' }))).toMatchObject({ code: 'invalid_argument', message: /^scenario: .*task_json/ });
    expect(await codeOf(client.start({ conversationId: 'b', taskJson: '{"id": 1}' }))).toMatchObject({ code: 'invalid_argument', message: /task_json/ });
    expect(await codeOf(client.reply({ conversationId: 'a' }))).toMatchObject({ code: 'invalid_argument', message: /^agent_message/ });
    const toolOnly = { role: Role.ASSISTANT, content: '', toolCalls: [{ id: 'c1', name: 'get_order_details', argumentsJson: '{}' }] };
    expect(await codeOf(client.reply({ conversationId: 'a', agentMessage: toolOnly }))).toMatchObject({ code: 'invalid_argument', message: /tool calls/ });
    expect(await codeOf(client.reply({ conversationId: 'a', agentMessage: { role: Role.USER, content: 'x' } }))).toMatchObject({
      code: 'invalid_argument',
      message: /agent_message.role/,
    });
    expect(await codeOf(client.start({ ...start, greeting: 'Different' }))).toMatchObject({ code: 'already_exists' });
    expect(await client.start(start)).toEqual(first); // identical Start is idempotent

    const id = await client.reply({ conversationId: 'a', agentMessage: agent('Could you tell me your name and zip code?') });
    expect(id.message?.content).toBe('My name is Yusuf Rossi. My zip code is 19122.');
    expect(id.stop).toBe(UserStop.UNSPECIFIED);
    expect((await client.reply({ conversationId: 'a', agentMessage: agent('Shall I proceed with the exchange?') })).message?.content).toBe('Yes, please go ahead.');
    const done = await client.reply({ conversationId: 'a', agentMessage: agent('The items have been exchanged. Anything else?') });
    expect(done.stop).toBe(UserStop.STOP);
    expect(done.usage).toMatchObject({ promptTokens: 0n, costUsd: 0, cached: false });
    expect(await codeOf(client.reply({ conversationId: 'a', agentMessage: agent('Hello?') }))).toMatchObject({
      code: 'failed_precondition',
      message: /###STOP###/,
    });
  });

  it('accepts a rendered scenario instead of task_json', async () => {
    const scenario = renderUserScenario(TaskSchema.parse(JSON.parse(taskJson('retail', '10'))).user_scenario);
    await client.start({ conversationId: 'text-only', scenario });
    const r = await client.reply({ conversationId: 'text-only', agentMessage: agent('What is your email?') });
    expect(r.message?.content).toBe('My email is mia.garcia2723@example.com.');
  });
});

describeTau2('retail', 'UserSimulator limits', () => {
  let clock = 0;
  const services: UserSimulatorService[] = [];
  afterAll(() => services.forEach((s) => s.close()));
  function make(maxTurns: number) {
    const service = new UserSimulatorService({
      config: parseUserSimConfig({ mode: 'scripted', maxConversations: 2, maxTurns, idleTtlMs: 1_000 }, {}),
      registry: new Registry(),
      now: () => clock,
    });
    services.push(service);
    return {
      service,
      start: (id: string) => service.start(create(StartRequestSchema, { conversationId: id, taskJson: taskJson('retail', '0') })),
      reply: (id: string, text: string) => service.reply(create(ReplyRequestSchema, { conversationId: id, agentMessage: agent(text) })),
    };
  }

  it('refuses conversations beyond the limit, drops idle ones, caps turns', async () => {
    const { service, start, reply } = make(2);
    await start('x');
    await start('y');
    expect(await codeOf(start('z'))).toMatchObject({ code: 'resource_exhausted', message: /maxConversations=2/ });
    await reply('x', 'Hello.');
    expect(await codeOf(reply('x', 'Hmm.'))).toMatchObject({ code: 'resource_exhausted', message: /maxTurns=2/ });
    clock += 1_500;
    expect(await codeOf(reply('y', 'Hello?'))).toMatchObject({ code: 'not_found', message: /idle/ });
    expect(service.size).toBe(0);
    await start('z');
    expect(service.size).toBe(1);
  });

  it('End releases a conversation the agent ended, so a full service takes new ones (idempotent)', async () => {
    const { service, start, reply } = make(50);
    await start('a');
    await start('b');
    expect(await codeOf(start('c'))).toMatchObject({ code: 'resource_exhausted' });
    await reply('a', 'Hello.');
    expect(await service.end(create(EndRequestSchema, { conversationId: 'a' }))).toEqual({ found: true, turns: 2 }); // the opening turn and one reply
    expect(await service.end(create(EndRequestSchema, { conversationId: 'a' }))).toEqual({ found: false, turns: 0 });
    await start('c');
    expect(await codeOf(reply('a', 'Still there?'))).toMatchObject({ code: 'not_found', message: /ended by the caller/ });
    expect(await codeOf(service.end(create(EndRequestSchema, { conversationId: '' })))).toMatchObject({ code: 'invalid_argument' });
  });

  it('refuses a second Reply while one runs, and recycles ended conversations when full', async () => {
    const { start, reply } = make(50);
    await start('other');
    await start('busy');
    const [a, b] = await Promise.allSettled([reply('busy', 'What is your name?'), reply('busy', 'What is your zip?')]);
    expect(a.status).toBe('fulfilled');
    expect(b).toMatchObject({ status: 'rejected', reason: { code: 'failed_precondition' } });
    expect((await reply('busy', 'Your exchange has been processed.')).stop).toBe(UserStop.STOP);
    await start('new-1'); // full: the ended conversation makes room
    expect(await codeOf(reply('busy', 'Hello?'))).toMatchObject({ code: 'not_found', message: /ended/ });
    expect(await codeOf(start('new-2'))).toMatchObject({ code: 'resource_exhausted' });
  });
});

describeTau2('retail', 'UserSimulator over gRPC, llm mode', () => {
  let double: ChatCompletionsDouble;
  let server: RunningUserSimulator;
  let client: ServiceClient<UserSimulatorMethods>;
  beforeAll(async () => {
    double = await ChatCompletionsDouble.start();
    const dir = mkdtempSync(join(tmpdir(), 'usersim-svc-'));
    writeFileSync(join(dir, 'guidelines.md'), 'GUIDELINES TEXT\n');
    server = await serveUserSimulator({
      config: {
        mode: 'llm',
        host: '127.0.0.1',
        port: 0,
        metricsPort: 0,
        baseUrl: double.baseUrl,
        model: 'user-model',
        guidelinesPath: join(dir, 'guidelines.md'),
        maxRetries: 1,
        backoffBaseMs: 1,
        promptUsdPerMTok: 1,
        completionUsdPerMTok: 1,
        cachePath: join(dir, 'cache.jsonl'),
      },
      env: {},
      logger,
      registry: new Registry(),
    });
    client = createGrpcClient(UserSimulator, `127.0.0.1:${server.port}`);
  });
  afterAll(async () => {
    client.close();
    await server.close();
    await double.close();
  });

  it('renders the prompt, shows the agent only text, maps stops, accounts usage, and reruns from the cache', async () => {
    const play = async (id: string) => {
      const s = await client.start({ conversationId: id, taskJson: taskJson('retail', '0') });
      const withTool = { role: Role.ASSISTANT, content: 'Let me check.', toolCalls: [{ id: 't', name: 'find_user_id_by_name_zip', argumentsJson: '{}' }] };
      const r = await client.reply({ conversationId: id, agentMessage: withTool });
      return [s, r];
    };
    double.enqueue(completion('I want to exchange two items.', { prompt_tokens: 300, completion_tokens: 20 }), completion('Thanks! ###STOP###', { prompt_tokens: 320, completion_tokens: 5 }));
    const [s, r] = await play('llm-1');
    const system = double.requests[0]!.body.messages[0]!.content;
    expect(system).toMatch(/^GUIDELINES TEXT\n\n\n<scenario>\nInstructions:\n\tDomain: retail\n/);
    expect(system.endsWith('</scenario>')).toBe(true);
    expect(double.requests[1]!.body.messages.at(-1)).toEqual({ role: 'user', content: 'Let me check.' });
    expect(JSON.stringify(double.requests[1]!.body)).not.toContain('find_user_id_by_name_zip');
    expect(r!.stop).toBe(UserStop.STOP);
    expect(s!.usage).toMatchObject({ promptTokens: 300n, completionTokens: 20n, cached: false });
    expect(s!.usage!.costUsd).toBeCloseTo(320 / 1e6);

    const again = await play('llm-2');
    expect(double.requests).toHaveLength(2); // served from the cache
    expect(again.map((m) => m!.message?.content)).toEqual([s!.message?.content, r!.message?.content]);
    expect(again.every((m) => m!.usage?.cached && m!.usage.costUsd === 0)).toBe(true);

    const metrics = await (await fetch(`http://127.0.0.1:${server.metricsPort}/metrics`)).text();
    expect(metrics).toMatch(/parley_usersim_prompt_tokens_total\{mode="llm"\} 620/);
    expect(metrics).toMatch(/parley_usersim_cache_hits_total 2/);
    expect(metrics).toMatch(/parley_usersim_cache_misses_total 2/);
    expect(metrics).toMatch(/parley_usersim_stops_total\{reason="###STOP###"\} 2/);
    expect(metrics).toMatch(/parley_usersim_turn_latency_seconds_count\{method="start",mode="llm",source="llm"\} 1/);
  });

  it('reports a failing endpoint as UNAVAILABLE and keeps the conversation usable', async () => {
    double.reset();
    double.enqueue(completion('Hello, I need help with an order.'), apiError(500, 'x'), apiError(502, 'y'), completion('Still here.'));
    await client.start({ conversationId: 'flaky', scenario: 'Instructions:\n\tYou want help.', seed: 3n });
    expect(await codeOf(client.reply({ conversationId: 'flaky', agentMessage: agent('Which order?') }))).toMatchObject({ code: 'unavailable' });
    const ok = await client.reply({ conversationId: 'flaky', agentMessage: agent('Which order?') });
    expect(ok.message?.content).toBe('Still here.');
    expect(double.requests.at(-1)!.body.messages.filter((m) => m.content === 'Which order?')).toHaveLength(1);
    expect(double.requests.at(-1)!.body.seed).toBe(3);
    const metrics = await (await fetch(`http://127.0.0.1:${server.metricsPort}/metrics`)).text();
    expect(metrics).toMatch(/parley_usersim_errors_total\{method="reply",code="unavailable"\} 1/);
    expect(metrics).toMatch(/parley_usersim_retries_total\{code="unavailable"\} 1/);
  });
});

describe('usersim config and CLI', () => {
  it('names the missing or bad field', () => {
    expect(() => parseUserSimConfig({ mode: 'llm' }, {})).toThrow(/baseUrl: required when mode is llm/);
    expect(() => parseUserSimConfig({ mode: 'llm', baseUrl: 'http://x/v1', model: 'm' }, {})).toThrow(/guidelinesPath/);
    expect(() => parseUserSimConfig({ port: 70000 }, {})).toThrow(/port/);
    const cfg = parseUserSimConfig({}, { PARLEY_USERSIM_MODE: 'llm', PARLEY_USERSIM_BASE_URL: 'http://x/v1', PARLEY_USERSIM_MODEL: 'm', PARLEY_TAU2_DATA: '/data' });
    expect(cfg).toMatchObject({ mode: 'llm', model: 'm', guidelinesPath: '/data/user_simulator/simulation_guidelines.md', temperature: 0 });
  });

  it('parses flags and serves', async () => {
    const cmd = usersimCommand();
    let parsed: Record<string, unknown> = {};
    cmd.action((opts: Record<string, unknown>) => {
      parsed = opts;
    });
    await cmd.parseAsync(['--mode', 'scripted', '--host', '127.0.0.1', '--port', '0', '--metrics-port=-1', '--no-cache', '--max-turns', '9'], { from: 'user' });
    expect(parsed).toMatchObject({ mode: 'scripted', port: '0', metricsPort: '-1', cache: false, maxTurns: '9' });
    const running = await serveUserSimulatorCommand(parsed);
    try {
      expect(running.config).toMatchObject({ mode: 'scripted', maxTurns: 9, cache: false });
      expect(running.port).toBeGreaterThan(0);
    } finally {
      await running.close();
    }
  });
});
