// Lookups and shared steps of the airline tools (TOOLS.md §2.1 helpers, §2.2 payment for updates), with the
// reference's error texts; all reads go through `db.root`, all writes through `db.edit`.

import type { DomainState, ToolDef } from '../../domain.js';
import { ToolError } from '../../domain.js';
import { PyFloat, PyInt, pyStr } from '../../pyjson.js';
import type { AirlineDb, Flight, FlightDate, Reservation, User } from './model.js';
import { construct, paymentModel, pyRepr, pyTypeName } from './validation.js';

export type AirlineState = DomainState<AirlineDb>;
export type AirlineTool = ToolDef<AirlineDb>;

/** The simulated "now" of the airline domain (created_at of new reservations). */
export const NOW = '2024-05-15T15:00:00';
const NEW_RESERVATION_IDS = ['HATHAT', 'HATHAU', 'HATHAV'];
export const NEW_CERTIFICATE_IDS = ['certificate_3221322', 'certificate_3221323', 'certificate_3221324'];

/** Python `key in dict` for a JSON-keyed dict (non-strings are never keys). */
export function has(map: object, key: unknown): key is string {
  return typeof key === 'string' && Object.hasOwn(map, key);
}

/** The error Python's `dict[key]` raises for a missing key: the key's repr. */
export function keyError(key: unknown): ToolError {
  return new ToolError(pyRepr(key));
}

/** Throws `User <id> not found`. */
export function getUser(state: AirlineState, userId: unknown): User {
  const users = state.db.root.users;
  if (!has(users, userId)) throw new ToolError(`User ${pyStr(userId)} not found`);
  return users[userId]!;
}

/** Throws `Reservation <id> not found`. */
export function getReservation(state: AirlineState, reservationId: unknown): Reservation {
  const reservations = state.db.root.reservations;
  if (!has(reservations, reservationId)) throw new ToolError(`Reservation ${pyStr(reservationId)} not found`);
  return reservations[reservationId]!;
}

/** Throws `Flight <n> not found`. */
export function getFlight(state: AirlineState, flightNumber: unknown): Flight {
  const flights = state.db.root.flights;
  if (!has(flights, flightNumber)) throw new ToolError(`Flight ${pyStr(flightNumber)} not found`);
  return flights[flightNumber]!;
}

/** Throws `Flight <n> not found`, then `Flight <n> not found on date <d>`. */
export function getFlightDate(state: AirlineState, flightNumber: unknown, date: unknown): FlightDate {
  const flight = getFlight(state, flightNumber);
  if (!has(flight.dates, date)) throw new ToolError(`Flight ${pyStr(flightNumber)} not found on date ${pyStr(date)}`);
  return flight.dates[date]!;
}

/** First of HATHAT/HATHAU/HATHAV not in the DB; throws `Too many reservations`. */
export function newReservationId(state: AirlineState): string {
  const id = NEW_RESERVATION_IDS.find((r) => !has(state.db.root.reservations, r));
  if (!id) throw new ToolError('Too many reservations');
  return id;
}

/**
 * The numeric value of a Python int/float/bool operand; throws Python's TypeError text for anything else
 * (a raw-assigned string, say), e.g. `unsupported operand type(s) for -: 'str' and 'int'`.
 */
export function operand(v: unknown, op: string, left: unknown, right: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (v instanceof PyFloat || v instanceof PyInt) return v.value;
  throw new ToolError(`unsupported operand type(s) for ${op}: '${pyTypeName(left)}' and '${pyTypeName(right)}'`);
}

/** Python `==` on two scalars as stored (tagged numbers compare by value). */
export function pyEq(a: unknown, b: unknown): boolean {
  const x = a instanceof PyFloat || a instanceof PyInt ? a.value : a;
  const y = b instanceof PyFloat || b instanceof PyInt ? b.value : b;
  return x === y || (typeof x === 'boolean' && Number(x) === y) || (typeof y === 'boolean' && Number(y) === x);
}

/**
 * Checks and charges `totalPrice` for a flight or baggage update, then appends the Payment when the price is
 * non-zero. Throws `Payment method not found`, `Certificate cannot be used to update reservation` or
 * `Gift card balance is not enough` before any change. A non-integral price fails the Payment validation after
 * the gift card was charged, as in the reference.
 */
export function payForUpdate(
  state: AirlineState,
  reservationId: string,
  paymentId: unknown,
  totalPrice: number,
): void {
  const userId = state.db.root.reservations[reservationId]!.user_id;
  const user = getUser(state, userId);
  if (!has(user.payment_methods, paymentId)) throw new ToolError('Payment method not found');
  const method = user.payment_methods[paymentId]!;
  if (method.source === 'certificate') throw new ToolError('Certificate cannot be used to update reservation');
  if (method.source === 'gift_card' && method.amount < totalPrice) throw new ToolError('Gift card balance is not enough');
  if (method.source === 'gift_card') {
    state.db.edit('users', userId, 'payment_methods', paymentId).amount -= totalPrice;
  }
  if (totalPrice !== 0) {
    const payment = construct('Payment', paymentModel, { payment_id: paymentId, amount: totalPrice });
    state.db.edit<Reservation['payment_history']>('reservations', reservationId, 'payment_history').push(payment);
  }
}
