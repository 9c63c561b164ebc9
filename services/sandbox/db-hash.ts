// tau2's DB hash: sha256 of json.dumps(db.model_dump(), sort_keys=True) (TOOLS.md §1).

import { createHash } from 'node:crypto';
import type { FloatFieldPredicate } from './pyjson.js';
import { pyDumpsPieces } from './pyjson.js';

// The last DB serializations hashed, with their hashes. Sessions often end in the same state (every
// successful episode of a task ends in its gold state, which the gold replay hashed first), and comparing
// two serializations piece by piece is cheap: unchanged subtrees are the same cached string objects.
// Equal pieces are equal text, so a hit is exactly the hash a fresh computation gives.
const RECENT_HASHES = 64;
const recentHashes: { pieces: string[]; hash: string }[] = [];

function samePieces(a: string[], b: string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Hex sha256 of the DB in the reference serialization, streamed piece by piece and remembered. */
export function dbHash(db: unknown, isFloatField: FloatFieldPredicate): string {
  const pieces = pyDumpsPieces(db, { sortKeys: true, isFloatField });
  const i = recentHashes.findIndex((r) => samePieces(r.pieces, pieces));
  if (i >= 0) {
    const hit = recentHashes[i]!;
    if (i > 0) recentHashes.unshift(...recentHashes.splice(i, 1));
    return hit.hash;
  }
  // The unchanged parts of a DB are cached flat pieces: hashing them one by one copies nothing into one
  // big string (about 1 ms for retail's 1.5 MB).
  const h = createHash('sha256');
  for (const piece of pieces) h.update(piece, 'utf8');
  const hash = h.digest('hex');
  recentHashes.unshift({ pieces, hash });
  if (recentHashes.length > RECENT_HASHES) recentHashes.pop();
  return hash;
}
