// Cache of LLM user turns keyed by sha256 of everything that determines the completion, in memory with
// an optional JSON-lines file, so evaluation reruns replay the same user and cost nothing.

import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { ParleyError, type Logger } from '../core/index.js';

/** What determines a user turn: the model, the full message list (system prompt + flipped history) and sampling. */
export interface CacheKeyParts {
  model: string;
  messages: ReadonlyArray<{ role: string; content: string }>;
  temperature: number;
  maxTokens?: number;
  seed?: number;
}

/** A stored user turn with the tokens it cost when it was generated. */
export interface CachedTurn {
  text: string;
  promptTokens: number;
  completionTokens: number;
}

/** The cache key: sha256 (hex) of a canonical JSON of the parts (fixed key order; absent options as null). */
export function cacheKey(parts: CacheKeyParts): string {
  const canonical = JSON.stringify({
    v: 1,
    model: parts.model,
    temperature: parts.temperature,
    max_tokens: parts.maxTokens ?? null,
    seed: parts.seed ?? null,
    messages: parts.messages.map((m) => [m.role, m.content]),
  });
  return createHash('sha256').update(canonical).digest('hex');
}

export interface UserTurnCacheOptions {
  /** JSON-lines file to load at open and append to on every new turn; absent = memory only. */
  path?: string;
  /** Most turns kept in memory (least recently used go first; the file keeps everything). */
  maxEntries?: number;
  logger?: Logger;
}

interface FileLine {
  key: string;
  text: string;
  prompt_tokens: number;
  completion_tokens: number;
}

function isFileLine(v: unknown): v is FileLine {
  const o = v as FileLine;
  return (
    !!o && typeof o.key === 'string' && typeof o.text === 'string' && typeof o.prompt_tokens === 'number' && typeof o.completion_tokens === 'number'
  );
}

/** The turn cache. Not shared across processes except through its file (appends are one line each). */
export class UserTurnCache {
  private readonly entries = new Map<string, CachedTurn>();
  private readonly maxEntries: number;
  /** Lines of the file that could not be read (e.g. a line cut short by a crash); they are skipped. */
  skippedLines = 0;
  /** Appends that failed; the turn stays cached in memory. */
  writeErrors = 0;

  private constructor(private readonly opts: UserTurnCacheOptions) {
    this.maxEntries = opts.maxEntries ?? 100_000;
  }

  /**
   * Opens a cache, loading `path` when it exists (later lines win). Throws ParleyError(failed_precondition)
   * when the file or its folder cannot be read or created; unreadable lines are skipped and counted.
   */
  static open(opts: UserTurnCacheOptions = {}): UserTurnCache {
    const cache = new UserTurnCache(opts);
    if (!opts.path) return cache;
    try {
      mkdirSync(dirname(opts.path), { recursive: true });
      if (!existsSync(opts.path)) return cache;
      for (const line of readFileSync(opts.path, 'utf8').split('\n')) {
        if (!line.trim()) continue;
        let parsed: unknown;
        try {
          parsed = JSON.parse(line);
        } catch {
          parsed = undefined;
        }
        if (!isFileLine(parsed)) {
          cache.skippedLines += 1;
          continue;
        }
        cache.remember(parsed.key, { text: parsed.text, promptTokens: parsed.prompt_tokens, completionTokens: parsed.completion_tokens });
      }
    } catch (e) {
      throw new ParleyError('failed_precondition', `cache file ${opts.path}: cannot be read or created (${(e as Error).message})`, { cause: e });
    }
    if (cache.skippedLines) opts.logger?.warn({ path: opts.path, skipped: cache.skippedLines }, 'skipped unreadable cache lines');
    return cache;
  }

  /** Number of turns held in memory. */
  get size(): number {
    return this.entries.size;
  }

  /** The cached turn for `key`, or undefined. Never throws. */
  get(key: string): CachedTurn | undefined {
    const hit = this.entries.get(key);
    if (hit) {
      this.entries.delete(key);
      this.entries.set(key, hit);
    }
    return hit;
  }

  /** Stores a turn in memory and appends it to the file. A failed append is logged and counted, never thrown. */
  set(key: string, turn: CachedTurn): void {
    this.remember(key, turn);
    if (!this.opts.path) return;
    const line: FileLine = { key, text: turn.text, prompt_tokens: turn.promptTokens, completion_tokens: turn.completionTokens };
    try {
      appendFileSync(this.opts.path, JSON.stringify(line) + '\n');
    } catch (e) {
      this.writeErrors += 1;
      this.opts.logger?.warn({ err: e, path: this.opts.path }, 'cannot append to the user-turn cache file');
    }
  }

  private remember(key: string, turn: CachedTurn): void {
    this.entries.delete(key);
    this.entries.set(key, turn);
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }
}
