// Translation between nats.js and the bus: NatsError and JetStream API errors to BusError codes
// (by error code, never by message text), and headers both ways.

import { ErrorCode, headers as natsHeaders, NatsError, type MsgHdrs } from 'nats';
import { BusError, type BusErrorCode } from './errors.js';
import type { Headers } from './types.js';

/** JetStream API err_code values (nats-server's errors.json) the bus tells apart. */
const API_CODES: Readonly<Record<number, BusErrorCode>> = {
  10014: 'not_found', // consumer not found
  10037: 'not_found', // no message found
  10059: 'not_found', // stream not found
  10013: 'conflict', // consumer name already in use
  10058: 'conflict', // stream name already in use with a different configuration
  10065: 'conflict', // subjects overlap with an existing stream
  10071: 'conflict', // wrong last sequence (KV compare-and-set)
  10099: 'conflict', // work queue: multiple non-filtered consumers
  10100: 'conflict', // work queue: filtered consumer not unique
  10148: 'conflict', // consumer already exists with another configuration
};

const CLIENT_CODES: Readonly<Partial<Record<string, BusErrorCode>>> = {
  [ErrorCode.Timeout]: 'timeout',
  [ErrorCode.NoResponders]: 'no_responders',
  [ErrorCode.ConnectionClosed]: 'closed',
  [ErrorCode.ConnectionDraining]: 'closed',
  [ErrorCode.ConnectionRefused]: 'unavailable',
  [ErrorCode.ConnectionTimeout]: 'unavailable',
  [ErrorCode.Disconnect]: 'unavailable',
  [ErrorCode.BadSubject]: 'invalid',
  [ErrorCode.BadHeader]: 'invalid',
  [ErrorCode.BadPayload]: 'invalid',
  [ErrorCode.InvalidOption]: 'invalid',
  [ErrorCode.MaxPayloadExceeded]: 'invalid',
  [ErrorCode.JetStream404NoMessages]: 'not_found',
  [ErrorCode.JetStream408RequestTimeout]: 'timeout',
  [ErrorCode.JetStream409]: 'conflict',
};

/** The bus code for a JetStream API status (HTTP-like). */
function apiStatusCode(status: number): BusErrorCode {
  if (status === 404) return 'not_found';
  if (status === 408) return 'timeout';
  if (status === 409) return 'conflict';
  if (status === 503) return 'unavailable';
  if (status >= 400 && status < 500) return 'invalid';
  return 'internal';
}

/** A BusError for anything nats.js threw; `context` says what was being done. */
export function fromNats(err: unknown, context: string): BusError {
  if (err instanceof BusError) return err;
  let code: BusErrorCode = 'internal';
  if (err instanceof NatsError) {
    const api = err.api_error;
    if (api) code = API_CODES[api.err_code ?? 0] ?? apiStatusCode(api.code);
    else code = CLIENT_CODES[err.code] ?? 'internal';
  }
  const text = err instanceof Error ? err.message : String(err);
  return new BusError(code, `${context}: ${text}`, { cause: err });
}

/** True when err is (or maps to) one of the codes. */
export function natsErrorIs(err: unknown, ...codes: BusErrorCode[]): boolean {
  return codes.includes(fromNats(err, '').code);
}

export function toNatsHeaders(h: Headers | undefined): MsgHdrs | undefined {
  const entries = Object.entries(h ?? {});
  if (entries.length === 0) return undefined;
  const out = natsHeaders();
  for (const [k, v] of entries) out.set(k, v);
  return out;
}

export function fromNatsHeaders(h: MsgHdrs | undefined): Headers {
  const out: Record<string, string> = {};
  if (!h) return out;
  for (const k of h.keys()) out[k] = h.get(k);
  return out;
}
