// The one error type of the message bus: a closed set of codes and a retryable flag, so callers
// branch on `code` and never on message text. Both implementations throw only BusError.

/** Every way a bus operation can fail. The set is closed: adding a code is an API change. */
export const BUS_ERROR_CODES = [
  /** The operation did not complete in time (request timeout, server did not answer). Retryable. */
  'timeout',
  /** A request found no subscriber on its subject. Retryable: a responder may appear. */
  'no_responders',
  /** A precondition failed: key exists, revision mismatch, incompatible stream or consumer config. */
  'conflict',
  /** The stream, consumer, or publish target does not exist. */
  'not_found',
  /** The bus (or the object used) was closed by this process. */
  'closed',
  /** Bad input: a malformed subject, name, key, header or option. The message says what is accepted. */
  'invalid',
  /** The server cannot be reached or is not ready (connection refused, lost, JetStream down). Retryable. */
  'unavailable',
  /** A request-reply handler threw; the reply carried its error instead of data. */
  'handler_failed',
  /** Anything else; a bug or an unexpected server answer. */
  'internal',
] as const;

export type BusErrorCode = (typeof BUS_ERROR_CODES)[number];

const RETRYABLE: ReadonlySet<BusErrorCode> = new Set<BusErrorCode>(['timeout', 'no_responders', 'unavailable']);

export interface BusErrorOptions {
  /** Overrides the code's default retryability. */
  retryable?: boolean;
  /** The underlying error (a NATS error, a system error). */
  cause?: unknown;
}

/** The error every bus method throws (or rejects with). */
export class BusError extends Error {
  override readonly name = 'BusError';
  readonly code: BusErrorCode;
  /** True when the same call may succeed later unchanged (timeouts, no responders, lost connection). */
  readonly retryable: boolean;

  constructor(code: BusErrorCode, message: string, opts: BusErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.code = code;
    this.retryable = opts.retryable ?? RETRYABLE.has(code);
  }

  /** Wraps anything thrown into a BusError; a BusError is returned unchanged. */
  static from(err: unknown, code: BusErrorCode = 'internal'): BusError {
    if (err instanceof BusError) return err;
    const message = err instanceof Error ? err.message : String(err);
    return new BusError(code, message, { cause: err });
  }

  /** True when `err` is a BusError, optionally with one of the given codes. */
  static is(err: unknown, ...codes: BusErrorCode[]): err is BusError {
    return err instanceof BusError && (codes.length === 0 || codes.includes(err.code));
  }
}
