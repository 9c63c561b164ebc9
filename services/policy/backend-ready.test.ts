// The openai-compatible backend's ready(): a policy sidecar serves nothing before its inference server
// answers GET /v1/models (vLLM answers once its model is loaded).

import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { OpenAICompatibleBackend } from './openai-backend.js';

const closers: (() => void)[] = [];
afterEach(() => {
  for (const c of closers.splice(0)) c();
});

describe('OpenAICompatibleBackend.ready', () => {
  it('resolves only once /v1/models answers 2xx, and stops waiting when aborted', async () => {
    let loaded = false;
    const paths: string[] = [];
    const server = createServer((req, res) => {
      paths.push(`${req.method} ${req.url}`);
      res.writeHead(loaded ? 200 : 503, { 'content-type': 'application/json' });
      res.end(loaded ? '{"object":"list","data":[{"id":"m"}]}' : '{"error":{"message":"loading"}}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    closers.push(() => server.close());
    const backend = new OpenAICompatibleBackend({ baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, model: 'm', timeoutMs: 1000, retry: { maxRetries: 0, baseDelayMs: 1, maxDelayMs: 1 }, maxConcurrency: 1 });
    let ready = false;
    const waiting = backend.ready(undefined, 20).then(() => (ready = true));
    await new Promise((r) => setTimeout(r, 150));
    expect(ready).toBe(false);
    loaded = true;
    await waiting;
    expect(paths.every((p) => p === 'GET /v1/models')).toBe(true);
    expect(paths.length).toBeGreaterThan(1);

    loaded = false;
    const abort = new AbortController();
    const aborted = backend.ready(abort.signal, 20);
    setTimeout(() => abort.abort(), 60);
    await expect(aborted).rejects.toMatchObject({ code: 'cancelled' });
  });
});
