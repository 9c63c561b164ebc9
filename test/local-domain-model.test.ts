// The local domain's word-level tokenizer and chat template: loadable by @huggingface/tokenizers and the
// policy's ChatModel, one token per domain word, an exact round trip of every rendered demonstration.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadChatModel, parseAssistantText } from '../services/policy/index.js';
import { agentSystemPrompt } from '../services/rollout/prompts.js';
import { runExpert, type Demonstration } from '../services/sandbox/domains/local/expert.js';
import { generateLocalDomain, loadLocalDomain, type LocalTask } from '../services/sandbox/domains/local/index.js';
import { Rng } from '../services/sandbox/domains/local/rng.js';
import { CITIES, ITEMS, NAMES, ORDER_IDS, REASONS, STATUSES, ZIPS } from '../services/sandbox/domains/local/words.js';
import { localChatTemplate, preTokenize, writeLocalModelFolder, type LocalModelFolder } from '../services/sandbox/domains/local-model/index.js';
import { loadTasks } from '../services/sandbox/tasks.js';

let root: string;
let domainDir: string;
let model: LocalModelFolder;
let tokenizer: Tokenizer;
let demos: Demonstration[];

function loadTokenizer(dir: string): Tokenizer {
  return new Tokenizer(JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')), JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')));
}

const encode = (t: Tokenizer, text: string) => t.encode(text, { add_special_tokens: false }).ids;
const decode = (t: Tokenizer, ids: number[]) => t.decode(ids, { clean_up_tokenization_spaces: false });

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'parley-local-model-'));
  domainDir = join(root, 'domain');
  generateLocalDomain({ seed: 5, trainTasks: 400, evalTasks: 80, customers: 100, outDir: domainDir });
  model = await writeLocalModelFolder(domainDir, join(root, 'model'));
  tokenizer = loadTokenizer(model.dir);
  const domain = loadLocalDomain(domainDir);
  const rng = new Rng(3);
  demos = [];
  for (const t of loadTasks(join(domainDir, 'tasks.json')) as LocalTask[]) {
    for (const skipAsk of [false, true]) demos.push(await runExpert(domain, t, { skipAsk, rng }));
  }
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('local model folder', () => {
  it('loads in @huggingface/tokenizers with a small vocabulary and the chat special tokens', () => {
    console.log(`local-domain vocabulary: ${model.vocabSize} tokens`);
    expect(model.vocabSize).toBeGreaterThan(300);
    expect(model.vocabSize).toBeLessThan(3000);
    const vocab = tokenizer.get_vocab(true);
    expect(vocab.size).toBe(model.vocabSize);
    expect(new Set(vocab.values())).toEqual(new Set(Array.from({ length: model.vocabSize }, (_, i) => i)));
    const config = JSON.parse(readFileSync(join(model.dir, 'tokenizer_config.json'), 'utf8'));
    expect(config).toMatchObject({ eos_token: '<|im_end|>', pad_token: '<|endoftext|>', bos_token: '<|endoftext|>', unk_token: '[UNK]' });
    for (const special of ['<|im_start|>', '<|im_end|>', '<|endoftext|>', '<tool_call>', '</tool_call>']) expect(encode(tokenizer, special)).toHaveLength(1);
    const ids = encode(tokenizer, '<|im_start|>assistant\n<tool_call>{}</tool_call><|im_end|>');
    expect(tokenizer.decode(ids, { skip_special_tokens: true })).toBe('assistant\n<tool_call>{}</tool_call>');
  });

  it('gives every word of the domain one token, and an unknown word one [UNK]', () => {
    const domain = loadLocalDomain(domainDir);
    const words = [...NAMES, ...ZIPS, ...CITIES, ...ITEMS, ...STATUSES, ...REASONS, ...ORDER_IDS];
    for (const c of Object.values(domain.initialDb.customers)) words.push(c.customer_id, ...Object.keys(c.orders));
    for (const t of domain.tools) words.push(t.name, ...Object.keys(t.parameters.properties));
    words.push('{"', '": "', '", "', '": {"', '": ["', '"]}', '"}}', '"}', '<tool_call>', '</tool_call>', '\n', ' ');
    words.push(...preTokenize(agentSystemPrompt(domain.policy)));
    for (const w of words) {
      const ids = encode(tokenizer, w);
      expect(ids, JSON.stringify(w)).toHaveLength(1);
      expect(ids[0], JSON.stringify(w)).not.toBe(0);
    }
    for (const text of ['{}', '{"summary": "Mary"}}', '?!..', ' "]}}] ', '@#$%^&*()[]<>|~`+=-_/\\\t']) {
      expect(decode(tokenizer, encode(tokenizer, text)), text).toBe(text);
    }
    expect(encode(tokenizer, 'Bonjour')).toEqual([0]);
    expect(decode(tokenizer, encode(tokenizer, 'Hi Bonjour!'))).toBe('Hi [UNK]!');
  });

  it('round-trips every rendered demonstration exactly, with the system prompt omitted or rendered', async () => {
    const systemModel = await writeLocalModelFolder({ words: model.words }, join(root, 'model-system'), { systemPrompt: 'render' });
    const withSystem = loadTokenizer(systemModel.dir);
    const templates = [new Template(localChatTemplate('omit')), new Template(localChatTemplate('render'))];
    let longest = 0;
    for (const d of demos) {
      for (const [k, template] of templates.entries()) {
        const text = template.render({ messages: d.messages, add_generation_prompt: false });
        const tok = k === 0 ? tokenizer : withSystem;
        const ids = encode(tok, text);
        expect(ids.includes(0), `${d.taskId}: [UNK] in ${text}`).toBe(false);
        expect(decode(tok, ids)).toBe(text);
        if (k === 0) longest = Math.max(longest, ids.length);
      }
    }
    console.log(`longest demonstration: ${longest} tokens (system prompt omitted)`);
    expect(longest).toBeLessThan(512);
  });

  it('is written identically for the same domain', async () => {
    const again = await writeLocalModelFolder(domainDir, join(root, 'model-again'));
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) {
      expect(readFileSync(join(again.dir, f), 'utf8')).toBe(readFileSync(join(model.dir, f), 'utf8'));
    }
  });
});

describe('local chat template through the policy ChatModel', () => {
  it('renders ChatML-like turns, Hermes tool calls that parse back, and prefixes that only grow', () => {
    const chat = loadChatModel(model.dir);
    expect(chat.vocabSize).toBe(model.vocabSize);
    expect(chat.toolArgumentsAsString).toBe(true);
    const d = demos.find((x) => x.messages.some((m) => m.tool_calls))!;
    const messages = d.messages as Parameters<typeof chat.render>[0];
    const text = chat.render(messages, { addGenerationPrompt: false, enableThinking: false });
    expect(text.startsWith('<|im_start|>assistant\nHi! How can I help you today?<|im_end|>\n<|im_start|>user\n')).toBe(true);
    expect(chat.decode(chat.encode(text))).toBe(text);
    for (let k = 2; k < messages.length; k++) {
      const prompt = chat.render(messages.slice(0, k), { addGenerationPrompt: true, enableThinking: false });
      const full = chat.render(messages.slice(0, k + 1), { addGenerationPrompt: false, enableThinking: false });
      if (messages[k]!.role === 'assistant') expect(full.startsWith(prompt)).toBe(true);
    }
    const i = messages.findIndex((m) => m.tool_calls);
    const before = chat.render(messages.slice(0, i), { addGenerationPrompt: true, enableThinking: false });
    const after = chat.render(messages.slice(0, i + 1), { addGenerationPrompt: false, enableThinking: false });
    const turn = after.slice(before.length);
    expect(turn.endsWith('<|im_end|>\n')).toBe(true);
    const sampled = chat.decode(chat.encode(turn), true);
    const parsed = parseAssistantText(sampled);
    const call = messages[i]!.tool_calls![0]!.function;
    expect(parsed.toolCalls).toEqual([{ name: call.name, argumentsJson: call.arguments }]);
    // Arguments given as an object render as the same text as the JSON string the expert writes.
    const asObject = messages.map((m) =>
      m.tool_calls ? { ...m, tool_calls: m.tool_calls.map((c) => ({ ...c, function: { ...c.function, arguments: JSON.parse(c.function.arguments as string) } })) } : m,
    );
    expect(chat.render(asObject, { addGenerationPrompt: false, enableThinking: false })).toBe(text);
  });
});
