// The fast encoder writes exactly the bytes protobuf-es writes, for every shape of request.

import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { ComputeLogprobsRequestSchema, ForwardBackwardRequestSchema } from '../core/gen/parley/v1/trainer_pb.js';
import { encodeComputeLogprobsRequest, encodeForwardBackwardRequest } from './wire.js';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32;
}

function sequence(r: () => number, n: number, opts: { float32?: boolean; partial?: boolean } = {}) {
  const floats = () => {
    const xs = Array.from({ length: n }, () => (r() - 0.5) * 20);
    return opts.float32 ? Float32Array.from(xs) : xs;
  };
  return {
    // Ids across every varint width, up to 2^32 − 1.
    tokenIds: Array.from({ length: n }, () => [5, 300, 70_000, 3_000_000, 4_294_967_295][Math.floor(r() * 5)]!),
    lossMask: Array.from({ length: n }, () => (r() < 0.5 ? 1 : 0)),
    behaviourLogprobs: floats(),
    oldLogprobs: opts.partial ? [] : floats(),
    advantages: floats(),
    offPolicy: r() < 0.5,
  };
}

const reference = (schema: typeof ForwardBackwardRequestSchema | typeof ComputeLogprobsRequestSchema, req: object) =>
  toBinary(schema, create(schema as typeof ForwardBackwardRequestSchema, req as never));

describe('wire encoding', () => {
  it('matches protobuf-es for ForwardBackward requests', () => {
    const r = rng(11);
    const cases = [
      { sequences: [sequence(r, 1)], loss: { kind: 'ppo', clipLow: 0.2, clipHigh: 0.28, dualClip: 3, klCoef: 0.001, aggregation: 'token_mean' }, lossScale: 0.375 },
      { sequences: [sequence(r, 200), sequence(r, 3000, { partial: true }), sequence(r, 17)], loss: {}, lossScale: 1e-9 },
      { sequences: [sequence(r, 64, { float32: true })] },
      { sequences: [] },
      { sequences: [{ tokenIds: [1, 2, 3] }], lossScale: 0 },
    ];
    for (const c of cases) {
      const fast = encodeForwardBackwardRequest(c as never);
      expect(Buffer.from(fast).equals(Buffer.from(reference(ForwardBackwardRequestSchema, c)))).toBe(true);
      expect(fromBinary(ForwardBackwardRequestSchema, fast).sequences).toHaveLength(c.sequences.length);
    }
  });

  it('matches protobuf-es for ComputeLogprobs requests', () => {
    const r = rng(5);
    for (const c of [{ sequences: [{ tokenIds: sequence(r, 500).tokenIds }], reference: true }, { sequences: [{ tokenIds: [7] }, { tokenIds: [] }] }]) {
      expect(Buffer.from(encodeComputeLogprobsRequest(c)).equals(Buffer.from(reference(ComputeLogprobsRequestSchema, c)))).toBe(true);
    }
  });
});
