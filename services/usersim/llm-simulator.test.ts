// The LLM user against a test double of an OpenAI-compatible server: role flipping, stop tokens,
// retries, timeouts, garbage, usage and cost, the pre-generated first utterance, and the turn cache.

import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ParleyError } from '../core/index.js';
import { UserTurnCache } from './cache.js';
import { LlmConversation, LlmUserBackend, type LlmBackendOptions } from './llm-simulator.js';
import { ChatCompletionsDouble, apiError, completion } from './test-support/chat-completions-double.js';
import { UserStop } from './types.js';

let double: ChatCompletionsDouble;
beforeAll(async () => {
  double = await ChatCompletionsDouble.start();
});
afterAll(() => double.close());
beforeEach(() => double.reset());

function backend(over: Partial<LlmBackendOptions> = {}): LlmUserBackend {
  return new LlmUserBackend({
    baseUrl: double.baseUrl,
    apiKey: 'sk-double',
    model: 'user-model',
    temperature: 0,
    timeoutMs: 2_000,
    maxRetries: 3,
    backoffBaseMs: 5,
    backoffMaxMs: 20,
    promptUsdPerMTok: 2,
    completionUsdPerMTok: 10,
    ...over,
  });
}

describe('LlmConversation', () => {
  it('flips roles: the agent speaks as "user", the simulated user as "assistant"', async () => {
    double.enqueue(completion('I want to return a lamp.'), completion('My name is Ana.'));
    const user = new LlmConversation(backend(), 'SYSTEM PROMPT');
    await user.start({ greeting: '' });
    await user.reply('Sure, what is your name?');
    expect(double.requests[0]!.body.messages).toEqual([
      { role: 'system', content: 'SYSTEM PROMPT' },
      { role: 'user', content: 'Hi! How can I help you today?' },
    ]);
    expect(double.requests[1]!.body.messages).toEqual([
      { role: 'system', content: 'SYSTEM PROMPT' },
      { role: 'user', content: 'Hi! How can I help you today?' },
      { role: 'assistant', content: 'I want to return a lamp.' },
      { role: 'user', content: 'Sure, what is your name?' },
    ]);
    const body = double.requests[1]!.body;
    expect(body.model).toBe('user-model');
    expect(body.temperature).toBe(0);
    expect(body.seed).toBeUndefined();
    expect(double.requests[1]!.authorization).toBe('Bearer sk-double');
  });

  it('maps ###STOP###, ###TRANSFER### and ###OUT-OF-SCOPE### to the stop reason, keeping the text', async () => {
    const cases: Array<[string, UserStop]> = [
      ['Thanks, bye! ###STOP###', UserStop.STOP],
      ['###TRANSFER###', UserStop.TRANSFER],
      ['I cannot say. ###OUT-OF-SCOPE###', UserStop.OUT_OF_SCOPE],
      ['Just chatting.', UserStop.UNSPECIFIED],
    ];
    for (const [text, stop] of cases) {
      double.enqueue(completion(text));
      const turn = await new LlmConversation(backend(), 'S').start({ greeting: 'Hi' });
      expect(turn).toMatchObject({ text, stop });
    }
  });

  it('uses a pre-generated first utterance verbatim, at no cost, and keeps it in the history', async () => {
    const user = new LlmConversation(backend(), 'S', 7);
    const first = await user.start({ greeting: 'Hello!', firstUtterance: 'I need to change a flight.' });
    expect(first).toMatchObject({ text: 'I need to change a flight.', source: 'pregenerated', usage: { promptTokens: 0, costUsd: 0 } });
    expect(double.requests).toHaveLength(0);
    await user.reply('Which flight?');
    expect(double.requests[0]!.body.messages.slice(1)).toEqual([
      { role: 'user', content: 'Hello!' },
      { role: 'assistant', content: 'I need to change a flight.' },
      { role: 'user', content: 'Which flight?' },
    ]);
    expect(double.requests[0]!.body.seed).toBe(7);
  });

  it('accounts tokens and cost at the configured prices', async () => {
    double.enqueue(completion('ok', { prompt_tokens: 1000, completion_tokens: 500 }));
    const turn = await new LlmConversation(backend(), 'S').start({ greeting: 'Hi' });
    expect(turn.usage).toEqual({ promptTokens: 1000, completionTokens: 500, costUsd: (1000 * 2 + 500 * 10) / 1e6, cached: false });
  });
});

describe('LlmUserBackend failures', () => {
  it('retries 500 and 429 with backoff, then succeeds', async () => {
    const delays: number[] = [];
    double.enqueue(apiError(500, 'boom'), apiError(429, 'slow down', { 'retry-after-ms': '15' }), completion('fine'));
    const b = backend({ onRetry: ({ delayMs }) => delays.push(delayMs) });
    const c = await b.complete([{ role: 'user', content: 'x' }]);
    expect(c).toMatchObject({ text: 'fine', retries: 2, source: 'llm' });
    expect(double.requests).toHaveLength(3);
    expect(delays[1]).toBeGreaterThanOrEqual(15); // Retry-After honoured
    expect(delays.every((d) => d <= 20)).toBe(true);
  });

  it('gives up after maxRetries with unavailable, and a failed turn leaves the history unchanged', async () => {
    const user = new LlmConversation(backend({ maxRetries: 2 }), 'S');
    double.enqueue(completion('first'));
    await user.start({ greeting: 'Hi' });
    double.enqueue(apiError(503, 'down'), apiError(503, 'down'), apiError(503, 'down'));
    const err = (await user.reply('question?').catch((e: unknown) => e)) as ParleyError;
    expect(err).toBeInstanceOf(ParleyError);
    expect(err.code).toBe('unavailable');
    expect(err.message).toMatch(/failed 3 time\(s\).*HTTP 503/);
    double.reset();
    double.enqueue(completion('second'));
    expect((await user.reply('question?')).text).toBe('second');
    expect(double.requests[0]!.body.messages.map((m) => m.content)).toEqual(['S', 'Hi', 'first', 'question?']);
  });

  it('does not retry 400 (failed_precondition) or 401 (unauthenticated)', async () => {
    double.enqueue(apiError(400, 'bad model'));
    await expect(backend().complete([{ role: 'user', content: 'x' }])).rejects.toMatchObject({ code: 'failed_precondition' });
    double.enqueue(apiError(401, 'no key'));
    await expect(backend().complete([{ role: 'user', content: 'x' }])).rejects.toMatchObject({ code: 'unauthenticated' });
    expect(double.requests).toHaveLength(2);
  });

  it('times out each attempt and reports unavailable', async () => {
    double.enqueue({ ...completion('late'), delayMs: 1_000 }, { ...completion('late'), delayMs: 1_000 });
    const err = (await backend({ timeoutMs: 100, maxRetries: 1 })
      .complete([{ role: 'user', content: 'x' }])
      .catch((e: unknown) => e)) as ParleyError;
    expect(err.code).toBe('unavailable');
    expect(err.message).toMatch(/timed out after 100 ms/);
    expect(double.requests).toHaveLength(2);
  });

  it('treats garbage 200s as retryable and fails with unavailable, never crashing', async () => {
    const garbage = [
      { raw: '<html>gateway</html>', contentType: 'text/html' },
      { raw: '{"choices": [', contentType: 'application/json' },
      { json: { unexpected: true } },
      completion(''),
      completion(null),
      { json: { choices: [] } },
    ];
    for (const g of garbage) {
      double.reset();
      double.enqueue(g, g);
      const err = (await backend({ maxRetries: 1 })
        .complete([{ role: 'user', content: 'x' }])
        .catch((e: unknown) => e)) as ParleyError;
      expect(err, JSON.stringify(g)).toBeInstanceOf(ParleyError);
      expect(err.code).toBe('unavailable');
      expect(double.requests).toHaveLength(2);
    }
    double.reset();
    double.enqueue(completion('   '), completion('recovered'));
    expect((await backend().complete([{ role: 'user', content: 'x' }])).text).toBe('recovered');
  });

  it('stops at once when the caller aborts', async () => {
    double.enqueue({ ...completion('late'), delayMs: 500 });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    await expect(backend().complete([{ role: 'user', content: 'x' }], { signal: ac.signal })).rejects.toMatchObject({ code: 'cancelled' });
  });
});

describe('turn cache', () => {
  const script = ['Which order?', 'Shall I cancel it?'];
  async function run(b: LlmUserBackend) {
    const user = new LlmConversation(b, 'SYS');
    const turns = [await user.start({ greeting: 'Hi' })];
    for (const a of script) turns.push(await user.reply(a));
    return turns;
  }

  it('makes a rerun free and identical, in memory and from the JSON-lines file', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'usersim-cache-')), 'turns.jsonl');
    const first = await run(backend({ cache: UserTurnCache.open({ path }) }));
    expect(double.requests).toHaveLength(3);
    expect(first.every((t) => !t.usage.cached && t.usage.costUsd > 0)).toBe(true);
    expect(readFileSync(path, 'utf8').trim().split('\n')).toHaveLength(3);

    double.reset();
    const original = double.fallback;
    double.fallback = () => completion('a different answer');
    try {
      const again = await run(backend({ cache: UserTurnCache.open({ path }) })); // a fresh process reading the file
      expect(double.requests).toHaveLength(0);
      expect(again.map((t) => t.text)).toEqual(first.map((t) => t.text));
      expect(again.every((t) => t.usage.cached && t.usage.costUsd === 0 && t.source === 'cache')).toBe(true);
      expect(again[0]!.usage.promptTokens).toBe(first[0]!.usage.promptTokens);

      // A different model or temperature is a different key.
      await run(backend({ cache: UserTurnCache.open({ path }), temperature: 0.7 }));
      expect(double.requests).toHaveLength(3);
    } finally {
      double.fallback = original;
    }
  });

  it('skips a line cut short by a crash and keeps the rest', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'usersim-cache-')), 'turns.jsonl');
    const cache = UserTurnCache.open({ path });
    cache.set('k1', { text: 'one', promptTokens: 1, completionTokens: 1 });
    writeFileSync(path, readFileSync(path, 'utf8') + '{"key":"k2","text":"tw');
    const reopened = UserTurnCache.open({ path });
    expect(reopened.get('k1')?.text).toBe('one');
    expect(reopened.get('k2')).toBeUndefined();
    expect(reopened.skippedLines).toBe(1);
  });

  it('bounds memory to maxEntries, least recently used first', () => {
    const cache = UserTurnCache.open({ maxEntries: 2 });
    const t = (text: string) => ({ text, promptTokens: 0, completionTokens: 0 });
    cache.set('a', t('a'));
    cache.set('b', t('b'));
    cache.get('a');
    cache.set('c', t('c'));
    expect([cache.get('a')?.text, cache.get('b'), cache.get('c')?.text]).toEqual(['a', undefined, 'c']);
  });
});
