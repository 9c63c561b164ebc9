// `parley prepare model --url`: against a local HTTP server serving archives made with the system tar,
// a download lands in place (a model folder at the top of the archive or under one folder), a second run
// keeps it, and failures (HTTP 404, connection refused, not an archive, a non-http scheme) name
// model.source.url. The command line is run as a pod's init container runs it.

import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ParleyError } from '../core/errors.js';
import { prepareModel } from './prepare-model.js';

const REPO = join(import.meta.dirname, '../..');
let dir: string;
let server: Server;
let base: string;
const requests: string[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'parley-prepare-model-'));
  const model = join(dir, 'src', 'tiny-model');
  mkdirSync(model, { recursive: true });
  writeFileSync(join(model, 'config.json'), '{"model_type":"qwen3"}');
  writeFileSync(join(model, 'tokenizer.json'), '{}');
  const files: Record<string, Buffer> = {};
  // One archive holds the folder, the other its files at the top.
  execFileSync('tar', ['-czf', join(dir, 'nested.tar.gz'), '-C', join(dir, 'src'), 'tiny-model']);
  execFileSync('tar', ['-cf', join(dir, 'flat.tar'), '-C', model, 'config.json', 'tokenizer.json']);
  files['/nested.tar.gz'] = readFileSync(join(dir, 'nested.tar.gz'));
  files['/flat.tar'] = readFileSync(join(dir, 'flat.tar'));
  files['/not-an-archive.tar.gz'] = Buffer.from('<html>sign in</html>');
  server = createServer((req, res) => {
    requests.push(req.url!);
    const body = files[req.url!];
    if (!body) return void res.writeHead(404).end('not found');
    res.writeHead(200, { 'content-length': body.length, 'content-type': 'application/octet-stream' }).end(body);
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((res) => server?.close(res));
  rmSync(dir, { recursive: true, force: true });
});

const rejection = async (p: Promise<unknown>): Promise<ParleyError> => {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(e).toBeInstanceOf(ParleyError);
  return e as ParleyError;
};

describe('parley prepare model --url', () => {
  it('extracts a .tar.gz of a model folder into --out from the command line, and a second run keeps it without downloading', async () => {
    const out = join(dir, 'data', 'models', 'tiny-1');
    const run = () => promisify(execFile)('npx', ['tsx', join(REPO, 'services/cli/main.ts'), 'prepare', 'model', '--url', `${base}/nested.tar.gz`, '--out', out], { cwd: REPO });
    const first = await run();
    expect(readdirSync(out).sort()).toEqual(['config.json', 'tokenizer.json']);
    expect(readFileSync(join(out, 'config.json'), 'utf8')).toBe('{"model_type":"qwen3"}');
    expect(first.stderr).toMatch(/downloading .*nested\.tar\.gz/);
    expect(first.stderr).toMatch(/extracted .* into /);
    // Nothing but the model folder is left beside it (the private extraction folder is gone).
    expect(readdirSync(join(dir, 'data', 'models'))).toEqual(['tiny-1']);
    const downloads = requests.length;
    const lines: string[] = [];
    await prepareModel(`${base}/nested.tar.gz`, out, (l) => lines.push(l));
    expect(lines).toEqual([`${out} already holds the model`]);
    expect(requests.length).toBe(downloads);
  });

  it('takes a plain .tar with the files at its top', async () => {
    const out = join(dir, 'data', 'models', 'tiny-flat');
    const lines: string[] = [];
    await prepareModel(`${base}/flat.tar`, out, (l) => lines.push(l));
    expect(readdirSync(out).sort()).toEqual(['config.json', 'tokenizer.json']);
    expect(lines.some((l) => /^downloaded .* \(100%\)$/.test(l))).toBe(true);
  });

  it('fails on HTTP 404 naming model.source.url and the status, leaving nothing behind', async () => {
    const out = join(dir, 'data', 'missing', 'm');
    const e = await rejection(prepareModel(`${base}/missing.tar.gz`, out, () => {}));
    expect(e).toMatchObject({ code: 'not_found', field: 'model.source.url' });
    expect(e.message).toMatch(/^model\.source\.url: GET .*\/missing\.tar\.gz answered HTTP 404/);
    expect(readdirSync(join(dir, 'data'))).not.toContain('missing');
  });

  it('fails on a refused connection naming model.source.url and the network error', async () => {
    const closed = createServer();
    await new Promise<void>((res) => closed.listen(0, '127.0.0.1', res));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((res) => closed.close(res));
    const e = await rejection(prepareModel(`http://127.0.0.1:${port}/m.tar.gz`, join(dir, 'data', 'refused', 'm'), () => {}));
    expect(e).toMatchObject({ code: 'unavailable', retryable: true, field: 'model.source.url' });
    expect(e.message).toMatch(/^model\.source\.url: cannot download .*ECONNREFUSED/);
    expect(existsSync(join(dir, 'data', 'refused'))).toBe(false);
  });

  it('fails on a body that is not a tar archive, and refuses schemes other than http(s) before connecting', async () => {
    const notTar = await rejection(prepareModel(`${base}/not-an-archive.tar.gz`, join(dir, 'data', 'bad', 'm'), () => {}));
    expect(notTar.message).toMatch(/^model\.source\.url: not a \.tar\.gz or \.tar/);
    expect(readdirSync(join(dir, 'data', 'bad'))).toEqual([]);
    const scheme = await rejection(prepareModel('file:///etc/passwd', join(dir, 'data', 'file', 'm'), () => {}));
    expect(scheme).toMatchObject({ code: 'invalid_argument', field: 'model.source.url' });
    expect(scheme.message).toContain('http:// or https://');
  });
});
