// In-process object store bucket: whole objects in memory, with the same SHA-256 digest format
// as the NATS object store.

import { createHash } from 'node:crypto';
import { BusError } from './errors.js';
import type { ObjectInfo, ObjectSource, ObjectStore } from './types.js';
import { checkObjectName, formatDigest } from './validate.js';

export class MemObjects implements ObjectStore {
  private readonly objects = new Map<string, { info: ObjectInfo; data: Uint8Array }>();

  constructor(
    readonly bucket: string,
    private readonly assertOpen: () => void,
  ) {}

  async put(name: string, source: ObjectSource, opts: { description?: string } = {}): Promise<ObjectInfo> {
    this.assertOpen();
    checkObjectName(name);
    const data = await readAll(source);
    const info: ObjectInfo = {
      name,
      size: data.length,
      digest: formatDigest(createHash('sha256').update(data).digest()),
      modifiedAt: new Date(),
      ...(opts.description === undefined ? {} : { description: opts.description }),
    };
    this.objects.set(name, { info, data });
    return { ...info };
  }

  async get(name: string): Promise<Uint8Array | null> {
    this.assertOpen();
    checkObjectName(name);
    return this.objects.get(name)?.data.slice() ?? null;
  }

  async info(name: string): Promise<ObjectInfo | null> {
    this.assertOpen();
    checkObjectName(name);
    const o = this.objects.get(name);
    return o ? { ...o.info } : null;
  }

  async delete(name: string): Promise<boolean> {
    this.assertOpen();
    checkObjectName(name);
    return this.objects.delete(name);
  }

  async list(): Promise<ObjectInfo[]> {
    this.assertOpen();
    return [...this.objects.values()].map((o) => ({ ...o.info }));
  }
}

/** Collects bytes or a stream of chunks into one buffer. Fails with 'invalid' on a non-byte chunk. */
export async function readAll(source: ObjectSource): Promise<Uint8Array> {
  if (source instanceof Uint8Array) return new Uint8Array(source);
  const chunks: Uint8Array[] = [];
  for await (const chunk of source) {
    if (!(chunk instanceof Uint8Array)) throw new BusError('invalid', 'object stream chunks must be Uint8Array');
    chunks.push(chunk);
  }
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
