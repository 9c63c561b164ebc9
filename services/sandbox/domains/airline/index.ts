// The tau2 airline domain: flights, users and reservations from db.json, the agent policy, and the 14 tools
// (12 airline tools plus the generic calculate and transfer_to_human_agents), in the reference's order.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Domain } from '../../domain.js';
import { calculateTool } from '../common/calculate.js';
import { transferTool } from '../common/generic-tools.js';
import { bookReservation } from './book-reservation.js';
import type { AirlineTool } from './db-access.js';
import type { AirlineDb } from './model.js';
import { isAirlineFloatField, normalizeAirlineDb } from './model.js';
import { READ_TOOLS as R } from './read-tools.js';
import { UPDATE_TOOLS as U } from './update-tools.js';

export type { AirlineDb } from './model.js';
export { isAirlineFloatField } from './model.js';

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`airline domain: cannot read ${path}: ${(e as Error).message}`);
  }
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/** The airline tools in the order tau2 offers them. */
export function airlineTools(): AirlineTool[] {
  return [
    bookReservation,
    calculateTool(),
    U.cancelReservation,
    R.getReservationDetails,
    R.getUserDetails,
    R.listAllAirports,
    R.searchDirectFlight,
    R.searchOnestopFlight,
    U.sendCertificate,
    transferTool(),
    U.updateReservationBaggages,
    U.updateReservationFlights,
    U.updateReservationPassengers,
    R.getFlightStatus,
  ];
}

/**
 * Loads the airline domain from a tau2 folder holding db.json and policy.md. The DB is normalized to the
 * model dump and frozen (sessions copy on write). Throws an Error naming the file when one is missing,
 * is not JSON, or does not have the airline DB's shape.
 */
export function loadAirlineDomain(dataDir: string): Domain<AirlineDb> {
  const dbPath = join(dataDir, 'db.json');
  let initialDb: AirlineDb;
  try {
    initialDb = normalizeAirlineDb(JSON.parse(readText(dbPath)));
  } catch (e) {
    const msg = (e as Error).message;
    throw new Error(msg.startsWith('airline domain:') ? msg : `airline domain: bad ${dbPath}: ${msg}`);
  }
  return {
    name: 'airline',
    policy: readText(join(dataDir, 'policy.md')),
    tools: airlineTools(),
    initialDb: deepFreeze(initialDb),
    isFloatField: isAirlineFloatField,
  };
}
