// The `local` domain: a small, seeded customer-service world (customers, orders, five tools) that a small
// model can learn on CPU. Loaded from a normal tau2 domain folder written by generateLocalDomain.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Domain } from '../../domain.js';
import { normalizeLocalDb, type LocalDb } from './model.js';
import { LOCAL_TOOLS } from './tools.js';

export type { LocalCustomer, LocalDb, LocalOrder } from './model.js';
export { LOCAL_TOOLS } from './tools.js';
export { generateLocalDomain, type GenerateLocalOptions, type GeneratedLocalDomain } from './generate.js';
export { type LocalTask, type LocalTaskMeta, type MissingInfo, type Intent } from './task-builder.js';

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`local domain: cannot read ${path}: ${(e as Error).message}`);
  }
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/**
 * Loads the local domain from a folder holding db.json and policy.md (as generateLocalDomain writes it).
 * Throws naming the file when one is missing or not valid JSON, or the path of a malformed DB field.
 */
export function loadLocalDomain(dataDir: string): Domain<LocalDb> {
  const dbPath = join(dataDir, 'db.json');
  const text = readText(dbPath);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`local domain: ${dbPath} is not valid JSON: ${(e as Error).message}`);
  }
  return {
    name: 'local',
    policy: readText(join(dataDir, 'policy.md')),
    tools: LOCAL_TOOLS,
    // Sessions share this tree and copy on write; freezing it turns a stray in-place write into an error.
    initialDb: deepFreeze(normalizeLocalDb(raw)),
    isFloatField: () => false,
  };
}
