// Turns a weights_published event into a folder this replica can load: a shared-volume path as it is,
// or the objects under a nats-object:// prefix downloaded into a local cache (old downloads pruned).

import { UPLOAD_COMPLETE } from '../core/weights-events.js';
import { existsSync } from 'node:fs';
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import type { Bus } from '../core/bus/index.js';
import { ParleyError, invalidArgument } from '../core/index.js';
import type { WeightsPublishedEvent } from '../core/weights-events.js';

const OBJECT_URI = /^nats-object:\/\/([A-Za-z0-9_-]+)\/(.+?)\/?$/;

/** Bucket and prefix of a `nats-object://<bucket>/<prefix>/` URI. Throws ParleyError(invalid_argument). */
export function parseObjectUri(uri: string): { bucket: string; prefix: string } {
  const m = OBJECT_URI.exec(uri);
  if (!m) throw invalidArgument('uri', `must look like nats-object://<bucket>/<prefix>/, got ${JSON.stringify(uri)}`);
  return { bucket: m[1]!, prefix: m[2]! };
}

/**
 * The folder to hand to LoadWeights. For kind lora it is the PEFT adapter inside the engine's
 * SaveWeights folder (export/, written by the engine's hf_model.export_pretrained) when that is there,
 * since a LoRA server loads the adapter and not the engine's own tensors; otherwise the folder itself.
 */
export function loadPath(folder: string, kind: WeightsPublishedEvent['kind']): string {
  const adapter = join(folder, 'export');
  return kind === 'lora' && existsSync(join(adapter, 'adapter_config.json')) ? adapter : folder;
}

export interface WeightsFetcherOptions {
  /** Where object-store downloads go: one sub-folder per version. */
  cacheDir: string;
  /** Downloaded versions kept (the newest); older folders are removed after a download. ≥ 1. */
  keepDownloads: number;
}

/** Fetches published weights to a local folder; one instance per replica (it owns its cache folder). */
export class WeightsFetcher {
  constructor(
    private readonly bus: Bus,
    private readonly opts: WeightsFetcherOptions,
  ) {}

  /**
   * The local folder of the event's weights. A directory URI is returned as given (the loader reports
   * a missing one). Rejects with ParleyError: invalid_argument for a bad URI or an object name that
   * would leave the download folder; not_found when no object lies under the prefix; the bus's error
   * (unavailable, retryable) or the file system's.
   */
  async fetch(e: WeightsPublishedEvent): Promise<string> {
    if (e.transport === 'directory') return e.uri;
    const { bucket, prefix } = parseObjectUri(e.uri);
    const target = resolve(this.opts.cacheDir, `v${String(e.version).padStart(8, '0')}`);
    // A finished download is renamed into place, so an existing folder is complete (versions are immutable).
    if (existsSync(target)) return target;
    const store = await this.bus.objects(bucket);
    const under = `${prefix}/`;
    const listed = (await store.list()).map((o) => o.name).filter((n) => n.startsWith(under));
    const names = listed.filter((n) => n !== `${under}${UPLOAD_COMPLETE}`);
    if (names.length === 0) throw new ParleyError('not_found', `no objects under ${e.uri} (the learner uploads them before it publishes)`);
    // The learner writes the marker after the files; without it a re-upload may be replacing them (retry later).
    if (names.length === listed.length) throw new ParleyError('unavailable', `the upload under ${e.uri} is not complete yet`);
    await mkdir(this.opts.cacheDir, { recursive: true });
    const tmp = `${target}.tmp-${process.pid}-${Date.now().toString(36)}`;
    try {
      for (const name of names) {
        const file = resolve(tmp, name.slice(under.length));
        if (!file.startsWith(tmp + sep)) throw invalidArgument('uri', `object ${name} would be written outside the download folder`);
        const body = await store.get(name);
        if (body === null) throw new ParleyError('unavailable', `object ${name} vanished during the download`);
        await mkdir(dirname(file), { recursive: true });
        await writeFile(file, body);
      }
      await rename(tmp, target);
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      throw err;
    }
    await this.prune();
    return target;
  }

  /** Removes all but the newest `keepDownloads` version folders (and leftovers of interrupted downloads). */
  private async prune(): Promise<void> {
    const entries = await readdir(this.opts.cacheDir, { withFileTypes: true });
    const versions = entries.filter((d) => d.isDirectory() && /^v\d{8}$/.test(d.name)).map((d) => d.name).sort();
    const stale = versions.slice(0, Math.max(0, versions.length - this.opts.keepDownloads));
    const leftovers = entries.filter((d) => d.isDirectory() && /^v\d{8}\.tmp-/.test(d.name) && !d.name.includes(`.tmp-${process.pid}-`)).map((d) => d.name);
    for (const name of [...stale, ...leftovers]) await rm(join(this.opts.cacheDir, name), { recursive: true, force: true });
  }
}
