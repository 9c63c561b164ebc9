// `parley prepare model --url URL --out DIR`: the init container of the pods that load a run's url model
// source (policy, learner). It streams a .tar.gz or .tar of a Hugging Face model folder into the system
// `tar`, extracting into a private folder beside DIR, and renames that into place; a DIR already there is
// kept, so a restarted pod or pods sharing a volume download it once.

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ParleyError } from '../core/errors.js';
import { isHttpUrl } from '../controller/run-spec.js';

const FIELD = 'model.source.url';
const MiB = 1024 * 1024;

const fail = (code: 'invalid_argument' | 'not_found' | 'failed_precondition' | 'unavailable', message: string, cause?: unknown) =>
  new ParleyError(code, `${FIELD}: ${message}`, { field: FIELD, cause });

/** A network error's most specific description: fetch wraps the socket's (ECONNREFUSED, ENOTFOUND, …) in `cause`. */
function networkReason(e: unknown): string {
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.code) return `${cause.code}${cause.message ? ` (${cause.message})` : ''}`;
  return cause?.message ?? (e instanceof Error ? e.message : String(e));
}

const size = (bytes: number) => (bytes >= MiB ? `${Math.round(bytes / MiB)} MiB` : `${bytes} bytes`);

/** Progress lines: every 10% when the size is known, else every 256 MiB. */
function progress(total: number, log: (line: string) => void): (bytes: number) => void {
  let next = total > 0 ? total / 10 : 256 * MiB;
  return (bytes) => {
    if (bytes < next) return;
    log(total > 0 ? `downloaded ${size(bytes)} of ${size(total)} (${Math.floor((100 * bytes) / total)}%)` : `downloaded ${size(bytes)}`);
    while (next <= bytes) next += total > 0 ? total / 10 : 256 * MiB;
  };
}

/** Streams `body` into `tar -x` in `dir` (gzip told apart by its magic bytes: tar cannot detect it on a pipe). */
async function extract(body: ReadableStream<Uint8Array>, dir: string, onBytes: (n: number) => void): Promise<number> {
  const chunks = Readable.fromWeb(body as import('node:stream/web').ReadableStream<Uint8Array>)[Symbol.asyncIterator]();
  const first = await chunks.next();
  if (first.done) throw fail('failed_precondition', 'the download is empty; expected a .tar.gz or .tar of the model folder');
  const head = first.value as Buffer;
  const gzip = head[0] === 0x1f && head[1] === 0x8b;
  const tar = spawn('tar', [gzip ? '-xzf' : '-xf', '-', '-C', dir, '--no-same-owner', '--no-same-permissions'], { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  tar.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number>((res, rej) => {
    tar.on('error', rej);
    tar.on('close', (code) => res(code ?? 1));
  });
  let bytes = 0;
  async function* all() {
    for (let next: IteratorResult<unknown> = first; !next.done; next = await chunks.next()) {
      bytes += (next.value as Buffer).length;
      onBytes(bytes);
      yield next.value as Buffer;
    }
  }
  const fed = pipeline(all(), tar.stdin).catch((e: unknown) => e);
  // A tar that stops early leaves the rest of the body unread: let the connection go.
  const [code, fedError] = await Promise.all([exited, fed]).finally(() => chunks.return?.());
  if (code !== 0) throw fail('failed_precondition', `not a .tar.gz or .tar of the model folder (tar: ${stderr.trim().split('\n')[0]?.replace(/^tar: /, '') || `exit ${code}`})`);
  if (fedError) throw fail('unavailable', `the download broke off after ${bytes} bytes: ${networkReason(fedError)}`, fedError);
  return bytes;
}

/** The model folder inside an extracted archive: its top, or the one folder the archive holds. */
function modelRoot(dir: string): string {
  const entries = readdirSync(dir);
  if (entries.length === 0) throw fail('failed_precondition', 'the archive holds no files');
  if (entries.length === 1 && statSync(join(dir, entries[0]!)).isDirectory()) return join(dir, entries[0]!);
  return dir;
}

/**
 * Downloads the model archive at `url` and extracts it to `outDir` unless that folder exists. Rejects with
 * ParleyError naming model.source.url: invalid_argument for a scheme other than http(s), not_found or
 * failed_precondition for an HTTP error status or a body that is not a tar archive, unavailable for a
 * network error (connection refused, unknown host, a broken download) or a 5xx status.
 */
export async function prepareModel(url: string, outDir: string, log: (line: string) => void): Promise<void> {
  if (!isHttpUrl(url)) throw fail('invalid_argument', `'${url}' must be an http:// or https:// URL`);
  const out = resolve(outDir);
  if (existsSync(out)) {
    log(`${out} already holds the model`);
    return;
  }
  let res: Response;
  try {
    res = await fetch(url, { redirect: 'follow' });
  } catch (e) {
    throw fail('unavailable', `cannot download ${url}: ${networkReason(e)}`, e);
  }
  if (!res.ok || !res.body) {
    await res.body?.cancel();
    const code = res.status === 404 ? 'not_found' : res.status >= 500 ? 'unavailable' : 'failed_precondition';
    throw fail(code, `GET ${url} answered HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`);
  }
  const total = Number(res.headers.get('content-length') ?? 0);
  log(`downloading ${url}${total > 0 ? ` (${size(total)})` : ''} into ${out}`);
  const parent = dirname(out);
  mkdirSync(parent, { recursive: true });
  const scratch = mkdtempSync(join(parent, '.prepare-model-'));
  try {
    const bytes = await extract(res.body, scratch, progress(total, log));
    try {
      renameSync(modelRoot(scratch), out);
    } catch (e) {
      // Another pod on the same volume finished first: the same URL gives the same folder.
      if (!existsSync(out)) throw e;
      log(`${out} was prepared by another pod`);
      return;
    }
    log(`extracted ${size(bytes)} into ${out}`);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
