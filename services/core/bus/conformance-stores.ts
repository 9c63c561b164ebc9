// Conformance: KV buckets (create/update compare-and-set, delete, keys, ttl, watch) and the object
// store (a ~1 MB round trip from bytes and from a stream, info, list, delete).

import { createHash, randomBytes } from 'node:crypto';
import { expect, it } from 'vitest';
import { bytes, expectBusError, sleep, text, uniq, type OpenBus } from './conformance-helpers.js';
import type { KvChange, KvWatch } from './types.js';

async function take(w: KvWatch, n: number): Promise<Array<Pick<KvChange, 'key' | 'operation'> & { value: string }>> {
  const out: Array<Pick<KvChange, 'key' | 'operation'> & { value: string }> = [];
  if (n === 0) return out;
  for await (const c of w) {
    out.push({ key: c.key, operation: c.operation, value: text(c.value) });
    if (out.length === n) break;
  }
  return out;
}

export function storeConformance(open: OpenBus): void {
  it('kv: put/get with increasing revisions; create fails when the key exists', async (ctx) => {
    const bus = await open(ctx);
    const kv = await bus.kv(uniq('kv'));
    expect(await kv.get('absent')).toBeNull();
    const r1 = await kv.create('actors.a1', bytes('10.0.0.1'));
    const e = (await kv.get('actors.a1'))!;
    expect([e.key, text(e.value), e.revision]).toEqual(['actors.a1', '10.0.0.1', r1]);
    expect(e.createdAt).toBeInstanceOf(Date);
    await expectBusError(kv.create('actors.a1', bytes('other')), 'conflict', false);
    const r2 = await kv.put('actors.a1', bytes('10.0.0.2'));
    expect(r2).toBeGreaterThan(r1);
    await kv.delete('actors.a1');
    expect(await kv.get('actors.a1')).toBeNull();
    expect(await kv.create('actors.a1', bytes('back'))).toBeGreaterThan(r2); // a deleted key can be created again
    await expectBusError(kv.put('bad key', bytes('x')), 'invalid', false);
    await expectBusError(kv.get('.leading'), 'invalid');
    await expectBusError(bus.kv('bad.bucket'), 'invalid');
  });

  it('kv: update is a compare-and-set on the revision', async (ctx) => {
    const bus = await open(ctx);
    const kv = await bus.kv(uniq('kv'));
    const r1 = await kv.put('run.step', bytes('1'));
    const r2 = await kv.update('run.step', bytes('2'), r1);
    expect(r2).toBeGreaterThan(r1);
    await expectBusError(kv.update('run.step', bytes('3'), r1), 'conflict', false);
    expect(text((await kv.get('run.step'))!.value)).toBe('2');
    await expectBusError(kv.update('never.written', bytes('x'), r2), 'conflict');
    await expectBusError(kv.delete('run.step', { revision: r1 }), 'conflict');
    await kv.delete('run.step', { revision: r2 });
    expect(await kv.get('run.step')).toBeNull();
    await expectBusError(kv.update('run.step', bytes('x'), 0), 'invalid');
  });

  it('kv: keys lists live keys only', async (ctx) => {
    const bus = await open(ctx);
    const kv = await bus.kv(uniq('kv'));
    expect(await kv.keys()).toEqual([]);
    await kv.put('a', bytes('1'));
    await kv.put('b.c', bytes('2'));
    await kv.put('d', bytes('3'));
    await kv.delete('d');
    expect((await kv.keys()).sort()).toEqual(['a', 'b.c']);
  });

  it('kv: entries expire after ttlMs when set, and never otherwise', async (ctx) => {
    const bus = await open(ctx);
    const short = await bus.kv(uniq('kv'), { ttlMs: 1_000 });
    const forever = await bus.kv(uniq('kv'));
    await short.put('hb.actor1', bytes('alive'));
    await forever.put('hb.actor1', bytes('alive'));
    expect(await short.get('hb.actor1')).not.toBeNull();
    await sleep(2_200);
    expect(await short.get('hb.actor1')).toBeNull();
    expect(await short.create('hb.actor1', bytes('again'))).toBeGreaterThan(0);
    expect(text((await forever.get('hb.actor1'))!.value)).toBe('alive');
  });

  it('kv: watch reports current values, then puts and deletes, filtered by key', async (ctx) => {
    const bus = await open(ctx);
    const kv = await bus.kv(uniq('kv'));
    await kv.put('actors.a', bytes('1'));
    await kv.put('other', bytes('x'));
    const all = await kv.watch({ key: 'actors.*' });
    const later = await kv.watch({ key: 'actors.*', updatesOnly: true });
    await kv.put('actors.b', bytes('2'));
    await kv.put('other', bytes('y'));
    await kv.delete('actors.a');
    expect(await take(all, 3)).toEqual([
      { key: 'actors.a', operation: 'put', value: '1' },
      { key: 'actors.b', operation: 'put', value: '2' },
      { key: 'actors.a', operation: 'delete', value: '' },
    ]);
    expect(await take(later, 2)).toEqual([
      { key: 'actors.b', operation: 'put', value: '2' },
      { key: 'actors.a', operation: 'delete', value: '' },
    ]);
    later.stop();
    later.stop();
  });

  it('objects: a ~1 MB object round-trips from bytes and from a stream', async (ctx) => {
    const bus = await open(ctx);
    const store = await bus.objects(uniq('obj'));
    const blob = new Uint8Array(randomBytes(1_000_003));
    const digest = `SHA-256=${createHash('sha256').update(blob).digest('base64').replace(/\+/g, '-').replace(/\//g, '_')}`;
    const info = await store.put('adapters/v1.safetensors', blob, { description: 'LoRA v1' });
    expect(info).toMatchObject({ name: 'adapters/v1.safetensors', size: blob.length, digest, description: 'LoRA v1' });
    expect(Buffer.from((await store.get('adapters/v1.safetensors'))!).equals(blob)).toBe(true);

    async function* chunks(): AsyncGenerator<Uint8Array> {
      for (let at = 0; at < blob.length; at += 200_000) yield blob.subarray(at, at + 200_000);
    }
    const streamed = await store.put('adapters/v2.safetensors', chunks());
    expect(streamed.digest).toBe(digest);
    expect(Buffer.from((await store.get('adapters/v2.safetensors'))!).equals(blob)).toBe(true);
    expect((await store.info('adapters/v2.safetensors'))?.size).toBe(blob.length);
    expect((await store.list()).map((i) => i.name).sort()).toEqual(['adapters/v1.safetensors', 'adapters/v2.safetensors']);
  });

  it('objects: info, get and delete of absent objects; replacing an object', async (ctx) => {
    const bus = await open(ctx);
    const store = await bus.objects(uniq('obj'));
    expect(await store.list()).toEqual([]);
    expect(await store.get('missing')).toBeNull();
    expect(await store.info('missing')).toBeNull();
    expect(await store.delete('missing')).toBe(false);
    await store.put('small', bytes('v1'));
    await store.put('small', bytes('version two'));
    expect(text((await store.get('small'))!)).toBe('version two');
    expect(await store.delete('small')).toBe(true);
    expect(await store.get('small')).toBeNull();
    expect(await store.list()).toEqual([]);
    await expectBusError(store.put('', bytes('x')), 'invalid');
  });
}
