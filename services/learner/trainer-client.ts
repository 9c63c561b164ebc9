// What the learner needs of the trainer engine: the Trainer service's methods, whether reached over
// gRPC (the Python engine) or implemented in-process (a test double).

import * as grpc from '@grpc/grpc-js';
import { fromBinary, type DescMessage } from '@bufbuild/protobuf';
import type { GenService, GenServiceMethods } from '@bufbuild/protobuf/codegenv2';
import { service as healthService } from 'grpc-health-check';
import { ParleyError } from '../core/errors.js';
import { createGrpcClient, type ServiceClient } from '../core/grpc.js';
import {
  ComputeLogprobsResponseSchema,
  ForwardBackwardResponseSchema,
  Trainer,
  type ComputeLogprobsResponse,
  type ForwardBackwardResponse,
} from '../core/gen/parley/v1/trainer_pb.js';
import { encodeComputeLogprobsRequest, encodeForwardBackwardRequest } from './wire.js';

type MethodsOf<S> = S extends GenService<infer M extends GenServiceMethods> ? M : never;

/** The Trainer service's methods (Init, ForwardBackward, OptimStep, ComputeLogprobs, SaveWeights, LoadWeights, Sample). */
export type TrainerClient = Omit<ServiceClient<MethodsOf<typeof Trainer>>, 'close'>;

const MAX_MESSAGE_BYTES = 512 * 1024 * 1024; // a step's batch of long trajectories passes gRPC's 4 MB default many times over

function fastMethod(name: string, responseSchema: DescMessage): grpc.MethodDefinition<Uint8Array, unknown> {
  return {
    path: `/${Trainer.typeName}/${name}`,
    requestStream: false,
    responseStream: false,
    requestSerialize: (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength),
    requestDeserialize: (b: Buffer) => b,
    responseSerialize: () => Buffer.alloc(0),
    responseDeserialize: (b: Buffer) => fromBinary(responseSchema, b),
  };
}

/**
 * A gRPC Trainer client; calls reject with ParleyError carrying the engine's status code.
 * ForwardBackward and ComputeLogprobs requests are encoded by wire.ts (same bytes, far faster).
 */
export function connectTrainer(address: string): TrainerClient & { close(): void } {
  const base = createGrpcClient(Trainer, address, { maxSendMessageBytes: MAX_MESSAGE_BYTES });
  const Ctor = grpc.makeGenericClientConstructor(
    { forwardBackward: fastMethod('ForwardBackward', ForwardBackwardResponseSchema), computeLogprobs: fastMethod('ComputeLogprobs', ComputeLogprobsResponseSchema) },
    'TrainerLargeRequests',
  );
  const fast = new Ctor(address, grpc.credentials.createInsecure(), {
    'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
    'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
  });
  const call = <T>(method: 'forwardBackward' | 'computeLogprobs', body: Uint8Array, timeoutMs?: number) =>
    new Promise<T>((resolve, reject) => {
      const fn = (fast as unknown as Record<string, (...a: unknown[]) => unknown>)[method]!;
      const options: grpc.CallOptions = timeoutMs ? { deadline: Date.now() + timeoutMs } : {};
      fn.call(fast, body, new grpc.Metadata(), options, (err: grpc.ServiceError | null, res: T) =>
        err ? reject(ParleyError.fromGrpc(err.code, err.details, err)) : resolve(res),
      );
    });
  return {
    ...base,
    forwardBackward: (req, opts) => call<ForwardBackwardResponse>('forwardBackward', encodeForwardBackwardRequest(req), opts?.timeoutMs),
    computeLogprobs: (req, opts) => call<ComputeLogprobsResponse>('computeLogprobs', encodeComputeLogprobsRequest(req), opts?.timeoutMs),
    close: () => {
      base.close();
      fast.close();
    },
  };
}

/**
 * Resolves once grpc.health.v1 at `address` reports parley.v1.Trainer SERVING. Rejects with
 * ParleyError('unavailable') after `timeoutMs` (the last error in the message) or when `signal` fires.
 */
export async function waitForTrainerHealthy(address: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  const Ctor = grpc.makeGenericClientConstructor(healthService as unknown as grpc.ServiceDefinition, 'Health');
  const client = new Ctor(address, grpc.credentials.createInsecure());
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  try {
    for (let delay = 50; ; delay = Math.min(delay * 2, 1000)) {
      if (signal?.aborted) throw new ParleyError('cancelled', `stopped waiting for the trainer engine at ${address}`);
      const status = await new Promise<string>((resolve) => {
        const check = (client as unknown as Record<string, (...a: unknown[]) => void>).Check!;
        check.call(client, { service: 'parley.v1.Trainer' }, new grpc.Metadata(), { deadline: Date.now() + 2000 }, (err: grpc.ServiceError | null, res: { status?: unknown }) =>
          resolve(err ? `error: ${err.details || err.message}` : String(res?.status)),
        );
      });
      if (status === 'SERVING' || status === '1') return;
      last = status;
      if (Date.now() + delay > deadline) break;
      await new Promise((r) => setTimeout(r, delay));
    }
  } finally {
    client.close();
  }
  throw new ParleyError('unavailable', `the trainer engine at ${address} did not become healthy within ${timeoutMs} ms (last: ${last})`);
}
