// KV buckets and object stores over nats.js views (js.views.kv, js.views.os), mapped onto the bus
// types; deleted entries and objects read as absent.

import { KvWatchInclude, type KV, type KvEntry as NatsKvEntry, type ObjectInfo as NatsObjectInfo, type ObjectStore as NatsOs } from 'nats';
import { BusError } from './errors.js';
import { fromNats, natsErrorIs } from './nats-errors.js';
import type { KvBucket, KvChange, KvEntry, KvWatch, KvWatchOptions, ObjectInfo, ObjectSource, ObjectStore } from './types.js';
import { checkKvKey, checkObjectName } from './validate.js';

type Guard = () => void;
type Track = (stop: () => void) => () => void;

async function call<T>(assertOpen: Guard, context: string, fn: () => Promise<T>): Promise<T> {
  assertOpen();
  try {
    return await fn();
  } catch (err) {
    throw fromNats(err, context);
  }
}

function checkRevision(revision: number): void {
  if (!Number.isInteger(revision) || revision <= 0) throw new BusError('invalid', `revision must be a positive integer, got ${revision}`);
}

export class NatsKv implements KvBucket {
  constructor(
    readonly bucket: string,
    private readonly kv: KV,
    private readonly assertOpen: Guard,
    private readonly track: Track,
  ) {}

  async get(key: string): Promise<KvEntry | null> {
    checkKvKey(key);
    const e = await call(this.assertOpen, `kv get ${this.bucket}/${key}`, () => this.kv.get(key));
    if (!e || e.operation !== 'PUT') return null;
    return { key, value: e.value, revision: e.revision, createdAt: e.created };
  }

  async put(key: string, value: Uint8Array): Promise<number> {
    checkKvKey(key);
    return call(this.assertOpen, `kv put ${this.bucket}/${key}`, () => this.kv.put(key, value));
  }

  async create(key: string, value: Uint8Array): Promise<number> {
    checkKvKey(key);
    return call(this.assertOpen, `kv create ${this.bucket}/${key}`, () => this.kv.create(key, value));
  }

  async update(key: string, value: Uint8Array, revision: number): Promise<number> {
    checkKvKey(key);
    checkRevision(revision);
    return call(this.assertOpen, `kv update ${this.bucket}/${key}@${revision}`, () => this.kv.update(key, value, revision));
  }

  async delete(key: string, opts: { revision?: number } = {}): Promise<void> {
    checkKvKey(key);
    if (opts.revision !== undefined) checkRevision(opts.revision);
    const o = opts.revision === undefined ? undefined : { previousSeq: opts.revision };
    await call(this.assertOpen, `kv delete ${this.bucket}/${key}`, () => this.kv.delete(key, o));
  }

  async keys(): Promise<string[]> {
    return call(this.assertOpen, `kv keys ${this.bucket}`, async () => {
      const out: string[] = [];
      for await (const k of await this.kv.keys()) out.push(k);
      return out;
    });
  }

  async watch(opts: KvWatchOptions = {}): Promise<KvWatch> {
    const key = opts.key ?? '>';
    checkKvKey(key, true);
    const include = opts.updatesOnly ? KvWatchInclude.UpdatesOnly : KvWatchInclude.LastValue;
    const iter = await call(this.assertOpen, `kv watch ${this.bucket}`, () => this.kv.watch({ key, include }));
    const stop = (): void => iter.stop();
    const untrack = this.track(stop);
    return {
      stop,
      [Symbol.asyncIterator]: async function* (): AsyncGenerator<KvChange> {
        try {
          for await (const e of iter) yield toChange(e);
        } finally {
          untrack();
          stop();
        }
      },
    };
  }
}

function toChange(e: NatsKvEntry): KvChange {
  return { key: e.key, operation: e.operation === 'PUT' ? 'put' : 'delete', value: e.value, revision: e.revision };
}

export class NatsObjects implements ObjectStore {
  constructor(
    readonly bucket: string,
    private readonly os: NatsOs,
    private readonly assertOpen: Guard,
  ) {}

  async put(name: string, source: ObjectSource, opts: { description?: string } = {}): Promise<ObjectInfo> {
    checkObjectName(name);
    const meta = { name, ...(opts.description === undefined ? {} : { description: opts.description }) };
    const info = await call(this.assertOpen, `object put ${this.bucket}/${name}`, () =>
      source instanceof Uint8Array ? this.os.putBlob(meta, source) : this.os.put(meta, toReadable(source)),
    );
    return toInfo(info);
  }

  async get(name: string): Promise<Uint8Array | null> {
    checkObjectName(name);
    return call(this.assertOpen, `object get ${this.bucket}/${name}`, () => this.os.getBlob(name));
  }

  async info(name: string): Promise<ObjectInfo | null> {
    checkObjectName(name);
    const info = await call(this.assertOpen, `object info ${this.bucket}/${name}`, () => this.os.info(name));
    return info && !info.deleted ? toInfo(info) : null;
  }

  async delete(name: string): Promise<boolean> {
    if ((await this.info(name)) === null) return false;
    try {
      await call(this.assertOpen, `object delete ${this.bucket}/${name}`, () => this.os.delete(name));
      return true;
    } catch (err) {
      if (natsErrorIs(err, 'not_found')) return false;
      throw err;
    }
  }

  async list(): Promise<ObjectInfo[]> {
    const all = await call(this.assertOpen, `object list ${this.bucket}`, () => this.os.list());
    return all.filter((i) => !i.deleted).map(toInfo);
  }
}

function toInfo(i: NatsObjectInfo): ObjectInfo {
  return {
    name: i.name,
    size: i.size,
    digest: i.digest,
    modifiedAt: new Date(i.mtime),
    ...(i.description ? { description: i.description } : {}),
  };
}

/** A web ReadableStream over any async iterable of byte chunks (what os.put takes). */
function toReadable(source: AsyncIterable<Uint8Array>): ReadableStream<Uint8Array> {
  const it = source[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const r = await it.next();
      if (r.done) controller.close();
      else if (r.value instanceof Uint8Array) controller.enqueue(r.value);
      else controller.error(new BusError('invalid', 'object stream chunks must be Uint8Array'));
    },
    async cancel() {
      await it.return?.();
    },
  });
}
