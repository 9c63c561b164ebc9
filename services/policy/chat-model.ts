// A chat model's text side loaded from a model folder: the tokenizer (tokenizer.json) and the chat
// template (tokenizer_config.json or chat_template.jinja), rendered with @huggingface/jinja.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Template } from '@huggingface/jinja';
import { Tokenizer, type AddedToken } from '@huggingface/tokenizers';
import { ParleyError } from '../core/index.js';

/** A message as chat templates expect it (OpenAI/Hugging Face shape). */
export interface TemplateMessage {
  role: string;
  content: string;
  reasoning_content?: string;
  tool_calls?: { id: string; type: 'function'; function: { name: string; arguments: string | Record<string, unknown> } }[];
  tool_call_id?: string;
}

/** A tool as chat templates expect it. */
export interface TemplateTool {
  type: 'function';
  function: { name: string; description: string; parameters: Record<string, unknown> };
}

export interface RenderOptions {
  tools?: TemplateTool[];
  addGenerationPrompt: boolean;
  /** Qwen3's switch; passed to the template as `enable_thinking`. */
  enableThinking: boolean;
}

/** Tokenizer plus chat template of one model. Immutable after loading; safe to share across requests. */
export class ChatModel {
  /** One more than the largest token id the tokenizer knows (added tokens included). */
  readonly vocabSize: number;
  /** Whether the template accepts tool-call arguments as a JSON string (kept verbatim) rather than an object. */
  readonly toolArgumentsAsString: boolean;
  private readonly template: Template;
  private readonly specialTokens: Record<string, string>;
  private readonly addedTokenIds: ReadonlySet<number>;
  /** Splits text at added tokens, when encoding piece by piece is exact for this tokenizer (else undefined). */
  private readonly splitter: RegExp | undefined;
  private readonly addedByText = new Map<string, number>();
  private readonly memo = new Map<string, number[]>();
  private memoTokens = 0;

  constructor(
    readonly tokenizer: Tokenizer,
    templateSource: string,
    config: Record<string, unknown>,
    readonly name: string,
  ) {
    try {
      this.template = new Template(templateSource);
    } catch (e) {
      throw new ParleyError('invalid_argument', `chat template of ${name} does not parse: ${(e as Error).message}`, { cause: e });
    }
    let max = -1;
    for (const id of tokenizer.get_vocab(true).values()) if (id > max) max = id;
    this.vocabSize = max + 1;
    const added = [...tokenizer.get_added_tokens_decoder().values()];
    this.addedTokenIds = new Set(added.map((t) => t.id));
    for (const t of added) this.addedByText.set(t.content, t.id);
    this.splitter = this.pieceSplitter(added);
    this.toolArgumentsAsString = /arguments\s+is\s+string/.test(templateSource);
    this.specialTokens = {};
    for (const key of ['bos_token', 'eos_token', 'pad_token', 'unk_token']) {
      const v = config[key];
      const text = typeof v === 'string' ? v : v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string' ? (v as { content: string }).content : undefined;
      if (text !== undefined) this.specialTokens[key] = text;
    }
  }

  /**
   * Renders messages with the chat template. Throws ParleyError(invalid_argument) when the template
   * rejects the conversation (e.g. a `raise_exception` for roles out of order).
   */
  render(messages: TemplateMessage[], opts: RenderOptions): string {
    try {
      return this.template.render({
        ...this.specialTokens,
        messages,
        tools: opts.tools && opts.tools.length > 0 ? opts.tools : undefined,
        add_generation_prompt: opts.addGenerationPrompt,
        enable_thinking: opts.enableThinking,
      });
    } catch (e) {
      throw new ParleyError('invalid_argument', `messages: the chat template of ${this.name} rejected the conversation: ${(e as Error).message}`, {
        cause: e,
        field: 'messages',
      });
    }
  }

  /** Whether `id` is an added token (`<|im_end|>`, `<think>`, ...) that the tokenizer never merges with text. */
  isAddedToken(id: number): boolean {
    return this.addedTokenIds.has(id);
  }

  /**
   * Tokenizes text without adding BOS/EOS (special-token text such as `<|im_start|>` becomes its id).
   * The text between added tokens is tokenized independently (as the tokenizer itself does), so those
   * pieces are memoized: system prompts, tool schemas and earlier turns cost a lookup, not a re-encode.
   */
  encode(text: string): number[] {
    if (text === '') return [];
    if (!this.splitter) return this.encodeRaw(text);
    const out: number[] = [];
    const pieces = text.split(this.splitter);
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i]!;
      if (piece === '') continue;
      if (i % 2 === 1) {
        out.push(this.addedByText.get(piece)!);
        continue;
      }
      let ids = this.memo.get(piece);
      if (!ids) {
        ids = this.encodeRaw(piece);
        this.remember(piece, ids);
      }
      for (const id of ids) out.push(id);
    }
    return out;
  }

  private encodeRaw(text: string): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: false }).ids;
  }

  private remember(piece: string, ids: number[]): void {
    this.memo.set(piece, ids);
    this.memoTokens += ids.length + 1;
    while (this.memoTokens > MEMO_TOKENS) {
      const [oldest, oldIds] = this.memo.entries().next().value as [string, number[]];
      this.memo.delete(oldest);
      this.memoTokens -= oldIds.length + 1;
    }
  }

  /**
   * A regex splitting text at added tokens, or undefined when piecewise encoding would not be exact:
   * added tokens that strip neighbouring whitespace, are normalized, or a pre-tokenizer that treats the
   * text after an added token differently from text on its own (e.g. Metaspace's first-word prefix).
   */
  private pieceSplitter(added: AddedToken[]): RegExp | undefined {
    if (added.length === 0 || added.some((t) => t.lstrip || t.rstrip || t.normalized || t.single_word)) return undefined;
    const alternatives = added
      .map((t) => t.content)
      .sort((a, b) => b.length - a.length)
      .map((c) => c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
    const splitter = new RegExp(`(${alternatives.join('|')})`);
    const probe = 'Hello world, 123 ünïcode  spaces\n\n';
    const first = added[0]!;
    const whole = this.encodeRaw(first.content + probe + first.content + ' ' + probe);
    const pieces = [first.id, ...this.encodeRaw(probe), first.id, ...this.encodeRaw(' ' + probe)];
    return JSON.stringify(whole) === JSON.stringify(pieces) ? splitter : undefined;
  }

  /** Decodes ids; `skipSpecial` drops special tokens such as `<|im_end|>` (not `<think>` or `<tool_call>`). */
  decode(ids: readonly number[], skipSpecial = false): string {
    if (ids.length === 0) return '';
    return this.tokenizer.decode(ids as number[], { skip_special_tokens: skipSpecial, clean_up_tokenization_spaces: false });
  }
}

function readJson(path: string, what: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ParleyError('not_found', `${what}: cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
  try {
    const v = JSON.parse(text) as unknown;
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not a JSON object');
    return v as Record<string, unknown>;
  } catch (e) {
    throw new ParleyError('invalid_argument', `${what}: ${path} is not a JSON object: ${(e as Error).message}`, { cause: e });
  }
}

function pickTemplate(dir: string, config: Record<string, unknown>): string {
  const jinjaFile = join(dir, 'chat_template.jinja');
  if (existsSync(jinjaFile)) return readFileSync(jinjaFile, 'utf8');
  const t = config.chat_template;
  if (typeof t === 'string' && t.length > 0) return t;
  if (Array.isArray(t)) {
    const named = t as { name?: unknown; template?: unknown }[];
    const def = named.find((x) => x.name === 'default') ?? named[0];
    if (def && typeof def.template === 'string') return def.template;
  }
  throw new ParleyError(
    'invalid_argument',
    `model folder ${dir}: no chat template (expected chat_template.jinja or a chat_template string in tokenizer_config.json)`,
  );
}

const loaded = new Map<string, ChatModel>();

/** Tokens kept in a model's memo of encoded text pieces (about 8 bytes each plus the key). */
const MEMO_TOKENS = 2_000_000;

/**
 * Loads the tokenizer and chat template from a model folder holding `tokenizer.json` and
 * `tokenizer_config.json` (and optionally `chat_template.jinja`). Results are cached per folder.
 * Throws ParleyError: not_found when a file is missing, invalid_argument when a file is malformed
 * or the folder has no chat template.
 */
export function loadChatModel(dir: string): ChatModel {
  const cached = loaded.get(dir);
  if (cached) return cached;
  const tokenizerJson = readJson(join(dir, 'tokenizer.json'), 'model folder');
  const config = readJson(join(dir, 'tokenizer_config.json'), 'model folder');
  const templateSource = pickTemplate(dir, config);
  let tokenizer: Tokenizer;
  try {
    tokenizer = new Tokenizer(tokenizerJson, config);
  } catch (e) {
    throw new ParleyError('invalid_argument', `model folder ${dir}: tokenizer.json is not usable: ${(e as Error).message}`, { cause: e });
  }
  const model = new ChatModel(tokenizer, templateSource, config, dir);
  loaded.set(dir, model);
  return model;
}
