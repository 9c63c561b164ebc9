// One error type for every Parley boundary: a closed set of codes mapped 1:1 to gRPC status codes,
// with retryability on the error, so callers branch on codes and never on message text.

import { status as GrpcStatus } from '@grpc/grpc-js';

/** The closed set of error codes (gRPC's, by name). */
export type ErrorCode =
  | 'cancelled'
  | 'unknown'
  | 'invalid_argument'
  | 'deadline_exceeded'
  | 'not_found'
  | 'already_exists'
  | 'permission_denied'
  | 'resource_exhausted'
  | 'failed_precondition'
  | 'aborted'
  | 'out_of_range'
  | 'unimplemented'
  | 'internal'
  | 'unavailable'
  | 'data_loss'
  | 'unauthenticated';

const TO_GRPC: Record<ErrorCode, GrpcStatus> = {
  cancelled: GrpcStatus.CANCELLED,
  unknown: GrpcStatus.UNKNOWN,
  invalid_argument: GrpcStatus.INVALID_ARGUMENT,
  deadline_exceeded: GrpcStatus.DEADLINE_EXCEEDED,
  not_found: GrpcStatus.NOT_FOUND,
  already_exists: GrpcStatus.ALREADY_EXISTS,
  permission_denied: GrpcStatus.PERMISSION_DENIED,
  resource_exhausted: GrpcStatus.RESOURCE_EXHAUSTED,
  failed_precondition: GrpcStatus.FAILED_PRECONDITION,
  aborted: GrpcStatus.ABORTED,
  out_of_range: GrpcStatus.OUT_OF_RANGE,
  unimplemented: GrpcStatus.UNIMPLEMENTED,
  internal: GrpcStatus.INTERNAL,
  unavailable: GrpcStatus.UNAVAILABLE,
  data_loss: GrpcStatus.DATA_LOSS,
  unauthenticated: GrpcStatus.UNAUTHENTICATED,
};

const FROM_GRPC = new Map<number, ErrorCode>(Object.entries(TO_GRPC).map(([k, v]) => [v, k as ErrorCode]));

/** Codes a caller may retry with backoff by default. */
const RETRYABLE: ReadonlySet<ErrorCode> = new Set(['unavailable', 'deadline_exceeded', 'resource_exhausted', 'aborted']);

export interface ParleyErrorOptions {
  cause?: unknown;
  /** Overrides the code's default retryability. */
  retryable?: boolean;
  /** The request field at fault, for invalid_argument. */
  field?: string;
}

export class ParleyError extends Error {
  override name = 'ParleyError';
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly field: string | undefined;

  constructor(code: ErrorCode, message: string, opts: ParleyErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.code = code;
    this.retryable = opts.retryable ?? RETRYABLE.has(code);
    this.field = opts.field;
  }

  /** The gRPC status code of this error. */
  get grpcStatus(): GrpcStatus {
    return TO_GRPC[this.code];
  }

  /** Builds the ParleyError for a gRPC status code (and the field at fault, when the server sent one). */
  static fromGrpc(status: number, message: string, cause?: unknown, field?: string): ParleyError {
    return new ParleyError(FROM_GRPC.get(status) ?? 'unknown', message, { cause, field });
  }

  /** Converts anything thrown into a ParleyError (gRPC ServiceErrors keep their status; others become internal). */
  static from(e: unknown): ParleyError {
    if (e instanceof ParleyError) return e;
    if (e && typeof e === 'object' && 'code' in e && typeof (e as { code: unknown }).code === 'number' && 'details' in e) {
      const se = e as { code: number; details: string };
      return ParleyError.fromGrpc(se.code, se.details, e);
    }
    const message = e instanceof Error ? e.message : String(e);
    return new ParleyError('internal', message, { cause: e });
  }
}

/** Shorthand for an invalid_argument error naming the field and what is accepted. */
export function invalidArgument(field: string, message: string): ParleyError {
  return new ParleyError('invalid_argument', `${field}: ${message}`, { field });
}
