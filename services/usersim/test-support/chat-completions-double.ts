// A TEST DOUBLE of an OpenAI-compatible server: only POST /v1/chat/completions, in the documented
// response shape, with scripted statuses, delays, headers and garbage bodies. For tests only.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the double answers to one request. */
export interface DoubleResponse {
  status?: number;
  /** A JSON body (sent as application/json). */
  json?: unknown;
  /** A raw body, sent with `contentType` (default text/plain). */
  raw?: string;
  contentType?: string;
  headers?: Record<string, string>;
  /** Wait before answering (to trigger client timeouts). */
  delayMs?: number;
}

/** One request the double received. */
export interface RecordedRequest {
  body: {
    model: string;
    messages: Array<{ role: string; content: string }>;
    temperature?: number;
    max_tokens?: number;
    seed?: number;
    [k: string]: unknown;
  };
  authorization?: string;
}

/** A chat.completion object as the OpenAI API documents it. */
export function completion(content: string | null, usage = { prompt_tokens: 100, completion_tokens: 10 }): DoubleResponse {
  return {
    json: {
      id: 'chatcmpl-double',
      object: 'chat.completion',
      created: 1_700_000_000,
      model: 'double-model',
      choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop', logprobs: null }],
      usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens },
    },
  };
}

/** An error body in the OpenAI shape. */
export function apiError(status: number, message: string, headers?: Record<string, string>): DoubleResponse {
  return { status, json: { error: { message, type: 'double_error', code: null } }, headers };
}

export class ChatCompletionsDouble {
  readonly requests: RecordedRequest[] = [];
  private readonly queue: DoubleResponse[] = [];
  /** Answer when the queue is empty: by default, a deterministic line derived from the last message. */
  fallback: (req: RecordedRequest) => DoubleResponse = (req) =>
    completion(`user line ${req.body.messages.length}: re "${req.body.messages.at(-1)?.content.slice(0, 40)}"`);

  private constructor(
    private readonly server: Server,
    readonly baseUrl: string,
  ) {}

  /** Starts the double on a free loopback port. */
  static async start(): Promise<ChatCompletionsDouble> {
    const holder: { double?: ChatCompletionsDouble } = {};
    const server = createServer((req, res) => void holder.double!.handle(req, res));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const { port } = server.address() as AddressInfo;
    holder.double = new ChatCompletionsDouble(server, `http://127.0.0.1:${port}/v1`);
    return holder.double;
  }

  /** Queues answers for the next requests, in order. */
  enqueue(...responses: DoubleResponse[]): this {
    this.queue.push(...responses);
    return this;
  }

  /** Forgets recorded requests and queued answers. */
  reset(): void {
    this.requests.length = 0;
    this.queue.length = 0;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
      return send(res, apiError(404, `double: no route ${req.method} ${req.url}`));
    }
    const recorded: RecordedRequest = { body: JSON.parse(Buffer.concat(chunks).toString('utf8')), authorization: req.headers.authorization };
    this.requests.push(recorded);
    const answer = this.queue.shift() ?? this.fallback(recorded);
    if (answer.delayMs) await new Promise((r) => setTimeout(r, answer.delayMs));
    if (!res.destroyed) send(res, answer);
  }
}

function send(res: ServerResponse, a: DoubleResponse): void {
  const body = a.json !== undefined ? JSON.stringify(a.json) : (a.raw ?? '');
  const type = a.json !== undefined ? 'application/json' : (a.contentType ?? 'text/plain');
  res.writeHead(a.status ?? 200, { 'content-type': type, ...a.headers });
  res.end(body);
}
