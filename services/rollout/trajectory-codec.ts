// Encodes a Trajectory for the trajectories stream. The generic protobuf writer costs about a microsecond
// per element of the long packed arrays (it allocates a chunk per float), milliseconds per episode; this
// writes token_ids, loss_mask and logprobs directly and the rest with toBinary. Protobuf parsers accept
// fields in any order, so the bytes decode to the same message as toBinary's.

import { create, toBinary } from '@bufbuild/protobuf';
import { TrajectorySchema } from '../core/gen/parley/v1/rollout_pb.js';
import type { TrajectoryInit } from './episode.js';

const TOKEN_IDS = 3;
const LOSS_MASK = 4;
const LOGPROBS = 5;
const LENGTH_DELIMITED = 2;
const FLOAT32_MAX = 3.4028234663852886e38;

function varintSize(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5;
}

function writeVarint(buf: Uint8Array, pos: number, v: number): number {
  while (v > 0x7f) {
    buf[pos++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  buf[pos++] = v;
  return pos;
}

const isUint32 = (v: number) => Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
const isFloat32 = (v: number) => !Number.isFinite(v) || Math.abs(v) <= FLOAT32_MAX;

/**
 * The Trajectory's protobuf bytes (decodable by fromBinary(TrajectorySchema, …)). Throws as toBinary does
 * on a value its field cannot hold (a token id that is not a uint32, a log-prob beyond float32's range).
 */
export function encodeTrajectory(t: TrajectoryInit): Uint8Array {
  const { tokenIds = [], lossMask = [], logprobs = [], ...rest } = t;
  if (!tokenIds.every(isUint32) || !lossMask.every(isUint32) || !logprobs.every(isFloat32)) {
    return toBinary(TrajectorySchema, create(TrajectorySchema, t)); // throws naming the bad value
  }
  const head = toBinary(TrajectorySchema, create(TrajectorySchema, rest as TrajectoryInit));
  const packedVarints = (xs: readonly number[]) => xs.reduce((n, v) => n + varintSize(v), 0);
  const sizes = [packedVarints(tokenIds), packedVarints(lossMask), logprobs.length * 4];
  const fieldSize = (n: number) => (n === 0 ? 0 : 1 + varintSize(n) + n); // tag, length, payload
  const out = new Uint8Array(head.length + sizes.reduce((a, n) => a + fieldSize(n), 0));
  out.set(head, 0);
  let pos = head.length;
  const start = (field: number, n: number) => {
    out[pos++] = (field << 3) | LENGTH_DELIMITED;
    pos = writeVarint(out, pos, n);
  };
  if (sizes[0]! > 0) {
    start(TOKEN_IDS, sizes[0]!);
    for (const v of tokenIds) pos = writeVarint(out, pos, v);
  }
  if (sizes[1]! > 0) {
    start(LOSS_MASK, sizes[1]!);
    for (const v of lossMask) pos = writeVarint(out, pos, v);
  }
  if (sizes[2]! > 0) {
    start(LOGPROBS, sizes[2]!);
    const view = new DataView(out.buffer, out.byteOffset + pos, sizes[2]!);
    for (let i = 0; i < logprobs.length; i++) view.setFloat32(i * 4, logprobs[i]!, true);
    pos += sizes[2]!;
  }
  return out;
}
