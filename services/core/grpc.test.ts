// The gRPC runtime over a real port: typed round trip, error codes both ways, grpc.health.v1, graceful close.

import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Learner } from './gen/parley/v1/learner_pb.js';
import { ParleyError } from './errors.js';
import { createGrpcClient, startGrpcServer, type ClientOf, type RunningGrpcServer } from './grpc.js';

describe('grpc runtime', () => {
  let server: RunningGrpcServer;
  let client: ClientOf<typeof Learner>;
  let paused = false;

  beforeAll(async () => {
    server = await startGrpcServer({
      port: 0,
      host: '127.0.0.1',
      services: [
        {
          service: Learner,
          impl: {
            status: () => ({ step: 7n, state: paused ? 'paused' : 'running' }),
            checkpoint: () => {
              throw new ParleyError('failed_precondition', 'checkpoint: no engine attached', { field: 'engine' });
            },
            pause: () => {
              paused = true;
              return {};
            },
            resume: () => {
              throw new Error('boom');
            },
          },
        },
      ],
    });
    client = createGrpcClient(Learner, `127.0.0.1:${server.port}`);
  });
  afterAll(async () => {
    client.close();
    await server.close();
  });

  it('round-trips typed messages', async () => {
    const s = await client.status({});
    expect(s.step).toBe(7n);
    await client.pause({});
    expect((await client.status({})).state).toBe('paused');
  });

  it('maps ParleyError codes to gRPC status and back', async () => {
    const err = await client.checkpoint({}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ParleyError);
    expect((err as ParleyError).code).toBe('failed_precondition');
    expect((err as ParleyError).grpcStatus).toBe(grpc.status.FAILED_PRECONDITION);
    expect((err as ParleyError).message).toContain('no engine attached');
    expect((err as ParleyError).field).toBe('engine');
  });

  it('reports unexpected throws as INTERNAL and keeps serving', async () => {
    const err = (await client.resume({}).catch((e: unknown) => e)) as ParleyError;
    expect(err.code).toBe('internal');
    expect((await client.status({})).step).toBe(7n);
  });

  it('serves grpc.health.v1 Check', async () => {
    const def = {
      check: {
        path: '/grpc.health.v1.Health/Check',
        requestStream: false,
        responseStream: false,
        // HealthCheckRequest { service = 1 } / HealthCheckResponse { status = 1 }
        requestSerialize: (s: string) => Buffer.concat([Buffer.from([0x0a, Buffer.byteLength(s)]), Buffer.from(s)]),
        requestDeserialize: (b: Buffer) => b,
        responseSerialize: (b: Buffer) => b,
        responseDeserialize: (b: Buffer) => (b.length >= 2 ? b[1] : 0),
      },
    } as const;
    const Ctor = grpc.makeGenericClientConstructor(def as any, 'Health');
    const hc = new Ctor(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure()) as any;
    const status = await new Promise((res, rej) => hc.check('parley.v1.Learner', (e: any, r: any) => (e ? rej(e) : res(r))));
    expect(status).toBe(1); // SERVING
    hc.close();
  });
});
