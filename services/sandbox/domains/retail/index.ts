// The tau2 retail domain: products, users and orders from db.json, the agent policy, and the 16 tools
// (14 retail tools plus the generic calculate and transfer_to_human_agents), in the reference's order.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Domain } from '../../domain.js';
import { deepFreeze } from '../../pyjson.js';
import { calculateTool, transferTool } from '../common/generic-tools.js';
import { parseOrderedJson } from '../common/ordered-json.js';
import type { RetailTool } from './db-access.js';
import type { RetailDb } from './model.js';
import { isRetailFloatField, normalizeRetailDb } from './model.js';
import * as R from './read-tools.js';
import * as W from './write-tools.js';

export type { RetailDb } from './model.js';
export { isRetailFloatField } from './model.js';

/** The retail tools in the order tau2 defines them. */
export function retailTools(): RetailTool[] {
  return [
    calculateTool(),
    W.cancelPendingOrder,
    W.exchangeDeliveredOrderItems,
    R.findUserIdByNameZip,
    R.findUserIdByEmail,
    R.getOrderDetails,
    R.getProductDetails,
    R.getItemDetails,
    R.getUserDetails,
    R.listAllProductTypes,
    W.modifyPendingOrderAddress,
    W.modifyPendingOrderItems,
    W.modifyPendingOrderPayment,
    W.modifyUserAddress,
    W.returnDeliveredOrderItems,
    transferTool(),
  ];
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`retail domain: cannot read ${path}: ${(e as Error).message}`);
  }
}

/**
 * Loads the retail domain from a tau2 folder holding db.json and policy.md. The DB is normalized to the
 * model dump (dict order as in the file) and frozen; sessions copy on write. Throws an Error naming the
 * file when one is missing, is not JSON, or does not have the retail DB's shape.
 */
export function loadRetailDomain(dataDir: string): Domain<RetailDb> {
  const dbPath = join(dataDir, 'db.json');
  const text = readText(dbPath);
  let initialDb: RetailDb;
  try {
    initialDb = normalizeRetailDb(parseOrderedJson(text));
  } catch (e) {
    throw new Error(`retail domain: bad ${dbPath}: ${(e as Error).message}`);
  }
  return {
    name: 'retail',
    policy: readText(join(dataDir, 'policy.md')),
    tools: retailTools(),
    initialDb: deepFreeze(initialDb),
    isFloatField: isRetailFloatField,
  };
}
