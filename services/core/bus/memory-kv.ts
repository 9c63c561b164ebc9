// In-process KV bucket: a bucket-wide revision counter, delete markers (as NATS keeps them),
// lazy expiry for ttlMs, and watches fed from every write.

import { AsyncQueue } from './async-queue.js';
import { BusError } from './errors.js';
import type { KvBucket, KvChange, KvEntry, KvOptions, KvWatch, KvWatchOptions } from './types.js';
import { checkKvKey, subjectMatches } from './validate.js';

interface Stored {
  value: Uint8Array;
  revision: number;
  time: number;
  operation: 'put' | 'delete';
}

export class MemKv implements KvBucket {
  private readonly entries = new Map<string, Stored>();
  private readonly watches = new Set<{ pattern: string; queue: AsyncQueue<KvChange> }>();
  private revision = 0;

  constructor(
    readonly bucket: string,
    private readonly opts: KvOptions,
    private readonly assertOpen: () => void,
  ) {}

  async get(key: string): Promise<KvEntry | null> {
    const e = this.current(key);
    if (!e || e.operation === 'delete') return null;
    return { key, value: e.value.slice(), revision: e.revision, createdAt: new Date(e.time) };
  }

  async put(key: string, value: Uint8Array): Promise<number> {
    this.current(key);
    return this.write(key, value, 'put');
  }

  async create(key: string, value: Uint8Array): Promise<number> {
    const e = this.current(key);
    if (e && e.operation === 'put') throw new BusError('conflict', `key ${key} already exists in bucket ${this.bucket}`);
    return this.write(key, value, 'put');
  }

  async update(key: string, value: Uint8Array, revision: number): Promise<number> {
    if (!Number.isInteger(revision) || revision <= 0) throw new BusError('invalid', `revision must be a positive integer, got ${revision}`);
    this.expectRevision(key, revision);
    return this.write(key, value, 'put');
  }

  async delete(key: string, opts: { revision?: number } = {}): Promise<void> {
    if (opts.revision !== undefined) this.expectRevision(key, opts.revision);
    else this.current(key);
    this.write(key, new Uint8Array(0), 'delete');
  }

  async keys(): Promise<string[]> {
    this.assertOpen();
    this.expireAll();
    return [...this.entries].filter(([, e]) => e.operation === 'put').map(([k]) => k);
  }

  async watch(opts: KvWatchOptions = {}): Promise<KvWatch> {
    this.assertOpen();
    const pattern = opts.key ?? '>';
    checkKvKey(pattern, true);
    const w = { pattern, queue: new AsyncQueue<KvChange>(() => this.watches.delete(w)) };
    if (!opts.updatesOnly) {
      this.expireAll();
      const initial = [...this.entries].filter(([k]) => subjectMatches(pattern, k)).sort((a, b) => a[1].revision - b[1].revision);
      for (const [key, e] of initial) w.queue.push(change(key, e));
    }
    this.watches.add(w);
    return w.queue;
  }

  /** Ends every watch (the bus is closing). */
  close(): void {
    for (const w of this.watches) w.queue.end();
    this.watches.clear();
  }

  /** The key's last entry (a delete marker included) unless expired; validates the key. */
  private current(key: string): Stored | undefined {
    this.assertOpen();
    checkKvKey(key);
    const e = this.entries.get(key);
    if (e && this.expired(e)) {
      this.entries.delete(key);
      return undefined;
    }
    return e;
  }

  private expectRevision(key: string, revision: number): void {
    const current = this.current(key)?.revision ?? 0;
    if (current !== revision) {
      throw new BusError('conflict', `key ${key} in bucket ${this.bucket} is at revision ${current}, not ${revision}`);
    }
  }

  private write(key: string, value: Uint8Array, operation: Stored['operation']): number {
    const e: Stored = { value: new Uint8Array(value), revision: ++this.revision, time: Date.now(), operation };
    this.entries.delete(key); // keep the map in revision order
    this.entries.set(key, e);
    for (const w of this.watches) if (subjectMatches(w.pattern, key)) w.queue.push(change(key, e));
    return e.revision;
  }

  private expired(e: Stored): boolean {
    return this.opts.ttlMs !== undefined && Date.now() - e.time >= this.opts.ttlMs;
  }

  private expireAll(): void {
    for (const [k, e] of this.entries) if (this.expired(e)) this.entries.delete(k);
  }
}

function change(key: string, e: Stored): KvChange {
  return { key, operation: e.operation, value: e.value.slice(), revision: e.revision };
}
