// Per-conversation token-in-token-out state, keyed by conversation id, in an LRU bounded by both the
// number of conversations and the total number of tokens held.

import type { TitoState } from './tito.js';

export interface PrefixCacheOptions {
  maxConversations: number;
  maxTokens: number;
}

/** An LRU of conversation states. Eviction only costs a rebuild of that conversation's prefix. */
export class PrefixCache {
  private readonly entries = new Map<string, TitoState>();
  private tokens = 0;

  constructor(private readonly opts: PrefixCacheOptions) {}

  /** The state of a conversation (marking it most recently used), or undefined. */
  get(conversationId: string): TitoState | undefined {
    const s = this.entries.get(conversationId);
    if (s) {
      this.entries.delete(conversationId);
      this.entries.set(conversationId, s);
    }
    return s;
  }

  /** Stores (or replaces) a conversation's state, then evicts least recently used ones over the bounds. */
  set(conversationId: string, state: TitoState): void {
    this.delete(conversationId);
    this.entries.set(conversationId, state);
    this.tokens += state.tokenIds.length;
    while (this.entries.size > this.opts.maxConversations || (this.tokens > this.opts.maxTokens && this.entries.size > 1)) {
      const oldest = this.entries.keys().next().value as string;
      this.delete(oldest);
    }
  }

  delete(conversationId: string): void {
    const s = this.entries.get(conversationId);
    if (!s) return;
    this.entries.delete(conversationId);
    this.tokens -= s.tokenIds.length;
  }

  get size(): number {
    return this.entries.size;
  }

  get totalTokens(): number {
    return this.tokens;
  }
}
