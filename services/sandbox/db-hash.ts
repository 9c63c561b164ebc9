// tau2's DB hash: sha256 of json.dumps(db.model_dump(), sort_keys=True) (TOOLS.md §1).

import { createHash } from 'node:crypto';
import type { FloatFieldPredicate } from './pyjson.js';
import { pyDumps } from './pyjson.js';

/** Hex sha256 of the DB in the reference serialization; `null` DBs hash to null as in tau2. */
export function dbHash(db: unknown, isFloatField: FloatFieldPredicate): string {
  const text = pyDumps(db, { sortKeys: true, isFloatField });
  return createHash('sha256').update(text, 'utf8').digest('hex');
}
