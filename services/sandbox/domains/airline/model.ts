// The airline DB as tau2's pydantic models dump it: db.json normalized into model field order, with every
// optional field present (null), and the schema knowledge of which numbers are Python floats (TOOLS.md §1, §2.1).

import type { FloatFieldPredicate } from '../../pyjson.js';

/** Literal choices in the reference's order (pydantic lists them in this order in its errors). */
export const CABINS = ['business', 'economy', 'basic_economy'] as const;
export const FLIGHT_TYPES = ['round_trip', 'one_way'] as const;
export const INSURANCE = ['yes', 'no'] as const;

export interface FlightDateAvailable {
  status: 'available';
  available_seats: Record<string, number>;
  prices: Record<string, number>;
}
/** landed / cancelled / delayed / flying / on time: only the variant's own time fields. */
export interface FlightDateOther {
  status: 'landed' | 'cancelled' | 'delayed' | 'flying' | 'on time';
  [field: string]: string;
}
export type FlightDate = FlightDateAvailable | FlightDateOther;

export interface Flight {
  flight_number: string;
  origin: string;
  destination: string;
  scheduled_departure_time_est: string;
  scheduled_arrival_time_est: string;
  dates: Record<string, FlightDate>;
}

export interface Passenger {
  first_name: string;
  last_name: string;
  dob: string;
}

export type PaymentMethod =
  | { source: 'credit_card'; id: string; brand: string; last_four: string }
  | { source: 'gift_card' | 'certificate'; id: string; amount: number };

export interface User {
  user_id: string;
  name: { first_name: string; last_name: string };
  address: { address1: string; address2: string | null; city: string; country: string; state: string; zip: string };
  email: string;
  dob: string;
  payment_methods: Record<string, PaymentMethod>;
  saved_passengers: Passenger[];
  membership: 'gold' | 'silver' | 'regular';
  reservations: string[];
}

export interface ReservationFlight {
  flight_number: string;
  origin: string;
  destination: string;
  date: string;
  price: number;
}

export interface Payment {
  payment_id: string;
  amount: number;
}

/** Fields typed `unknown` can hold raw-assigned tool arguments (TOOLS.md §0.6). */
export interface Reservation {
  reservation_id: string;
  user_id: string;
  origin: string;
  destination: string;
  flight_type: string;
  cabin: unknown;
  flights: ReservationFlight[];
  passengers: unknown[];
  payment_history: Payment[];
  created_at: string;
  total_baggages: unknown;
  nonfree_baggages: unknown;
  insurance: string;
  status: 'cancelled' | null;
}

export interface AirlineDb {
  flights: Record<string, Flight>;
  users: Record<string, User>;
  reservations: Record<string, Reservation>;
}

/** Only user payment methods (objects with a `source`) hold float amounts; every other number is an int. */
export const isAirlineFloatField: FloatFieldPredicate = (key, parent) => key === 'amount' && 'source' in parent;

// Field lists of the flight-date variants, in model order after `status`.
const DATE_FIELDS: Record<string, readonly string[]> = {
  landed: ['actual_departure_time_est', 'actual_arrival_time_est'],
  cancelled: [],
  delayed: ['estimated_departure_time_est', 'estimated_arrival_time_est'],
  flying: ['actual_departure_time_est', 'estimated_arrival_time_est'],
  'on time': ['estimated_departure_time_est', 'estimated_arrival_time_est'],
};

class ShapeError extends Error {}

function need(value: any, where: string, type: 'string' | 'number' | 'object'): any {
  const ok = type === 'object' ? value !== null && typeof value === 'object' && !Array.isArray(value) : typeof value === type;
  if (!ok) throw new ShapeError(`${where}: expected ${type}, got ${JSON.stringify(value)}`);
  return value;
}

function str(o: any, key: string, where: string): string {
  return need(o[key], `${where}.${key}`, 'string');
}

function int(o: any, key: string, where: string): number {
  return need(o[key], `${where}.${key}`, 'number');
}

function list<T>(o: any, key: string, where: string, item: (v: any, where: string) => T): T[] {
  const v = o[key];
  if (!Array.isArray(v)) throw new ShapeError(`${where}.${key}: expected array`);
  return v.map((x, i) => item(x, `${where}.${key}[${i}]`));
}

function map<T>(o: any, key: string, where: string, item: (v: any, where: string) => T): Record<string, T> {
  const out: Record<string, T> = {};
  for (const [k, v] of Object.entries<any>(need(o[key], `${where}.${key}`, 'object'))) out[k] = item(v, `${where}.${key}.${k}`);
  return out;
}

function numbers(o: any, key: string, where: string): Record<string, number> {
  return map(o, key, where, (v, w) => need(v, w, 'number'));
}

function flightDate(d: any, where: string): FlightDate {
  need(d, where, 'object');
  const status = str(d, 'status', where);
  if (status === 'available') {
    return { status, available_seats: numbers(d, 'available_seats', where), prices: numbers(d, 'prices', where) };
  }
  const fields = DATE_FIELDS[status];
  if (!fields) throw new ShapeError(`${where}.status: unknown flight status '${status}'`);
  const out: FlightDateOther = { status: status as FlightDateOther['status'] };
  for (const f of fields) out[f] = str(d, f, where);
  return out;
}

function flight(f: any, where: string): Flight {
  need(f, where, 'object');
  return {
    flight_number: str(f, 'flight_number', where),
    origin: str(f, 'origin', where),
    destination: str(f, 'destination', where),
    scheduled_departure_time_est: str(f, 'scheduled_departure_time_est', where),
    scheduled_arrival_time_est: str(f, 'scheduled_arrival_time_est', where),
    dates: map(f, 'dates', where, flightDate),
  };
}

function passenger(p: any, where: string): Passenger {
  need(p, where, 'object');
  return { first_name: str(p, 'first_name', where), last_name: str(p, 'last_name', where), dob: str(p, 'dob', where) };
}

function paymentMethod(m: any, where: string): PaymentMethod {
  need(m, where, 'object');
  const source = str(m, 'source', where);
  const id = str(m, 'id', where);
  if (source === 'credit_card') {
    return { source, id, brand: str(m, 'brand', where), last_four: str(m, 'last_four', where) };
  }
  if (source === 'gift_card' || source === 'certificate') return { source, id, amount: int(m, 'amount', where) };
  throw new ShapeError(`${where}.source: unknown payment source '${source}'`);
}

function user(u: any, where: string): User {
  need(u, where, 'object');
  const name = need(u.name, `${where}.name`, 'object');
  const a = need(u.address, `${where}.address`, 'object');
  const address2 = a.address2 ?? null;
  if (address2 !== null) need(address2, `${where}.address.address2`, 'string');
  return {
    user_id: str(u, 'user_id', where),
    name: { first_name: str(name, 'first_name', where), last_name: str(name, 'last_name', where) },
    address: {
      address1: str(a, 'address1', where),
      address2,
      city: str(a, 'city', where),
      country: str(a, 'country', where),
      state: str(a, 'state', where),
      zip: str(a, 'zip', where),
    },
    email: str(u, 'email', where),
    dob: str(u, 'dob', where),
    payment_methods: map(u, 'payment_methods', where, paymentMethod),
    saved_passengers: list(u, 'saved_passengers', where, passenger),
    membership: str(u, 'membership', where) as User['membership'],
    reservations: list(u, 'reservations', where, (v, w) => need(v, w, 'string')),
  };
}

function reservationFlight(f: any, where: string): ReservationFlight {
  need(f, where, 'object');
  return {
    flight_number: str(f, 'flight_number', where),
    origin: str(f, 'origin', where),
    destination: str(f, 'destination', where),
    date: str(f, 'date', where),
    price: int(f, 'price', where),
  };
}

function reservation(r: any, where: string): Reservation {
  need(r, where, 'object');
  const status = r.status ?? null;
  if (status !== null && status !== 'cancelled') throw new ShapeError(`${where}.status: unknown status '${status}'`);
  return {
    reservation_id: str(r, 'reservation_id', where),
    user_id: str(r, 'user_id', where),
    origin: str(r, 'origin', where),
    destination: str(r, 'destination', where),
    flight_type: str(r, 'flight_type', where),
    cabin: str(r, 'cabin', where),
    flights: list(r, 'flights', where, reservationFlight),
    passengers: list(r, 'passengers', where, passenger),
    payment_history: list(r, 'payment_history', where, (p, w) => ({
      payment_id: str(p, 'payment_id', w),
      amount: int(p, 'amount', w),
    })),
    created_at: str(r, 'created_at', where),
    total_baggages: int(r, 'total_baggages', where),
    nonfree_baggages: int(r, 'nonfree_baggages', where),
    insurance: str(r, 'insurance', where),
    status,
  };
}

/**
 * Builds the model dump of a parsed airline db.json.
 * Throws an Error naming the offending path (e.g. `users.x.address.city: expected string`) on a malformed DB.
 */
export function normalizeAirlineDb(raw: unknown): AirlineDb {
  try {
    need(raw, 'db', 'object');
    return {
      flights: map(raw, 'flights', 'db', flight),
      users: map(raw, 'users', 'db', user),
      reservations: map(raw, 'reservations', 'db', reservation),
    };
  } catch (e) {
    if (e instanceof ShapeError) throw new Error(`invalid airline DB: ${e.message}`);
    throw e;
  }
}
