// Sampling seeds for episodes: derived from everything that names the episode, so that neighbouring
// episodes (the samples of a group, the tasks of an evaluation) draw unrelated random streams. Seeds made
// by adding small offsets to one base make the turns of one episode share draws with another episode's.

import { createHash } from 'node:crypto';

/**
 * A seed in [1, 2^48) from the given parts (the same parts always give the same seed). 48 bits keep it
 * exact in a double and positive in an int64 after a per-turn offset is added.
 */
export function deriveSeed(...parts: (string | number | bigint)[]): bigint {
  const digest = createHash('sha256').update(parts.map(String).join('\u0000')).digest();
  const seed = digest.readUIntBE(0, 6);
  return BigInt(seed === 0 ? 1 : seed);
}
