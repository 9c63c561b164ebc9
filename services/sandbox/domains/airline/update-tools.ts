// The airline WRITE tools that change an existing reservation or user (TOOLS.md §2.2): cancel, passengers,
// baggage, flights and send_certificate, each checking in the reference's order before it mutates.

import type { JsonSchemaObject } from '../../domain.js';
import { ToolError } from '../../domain.js';
import { pyStr } from '../../pyjson.js';
import type { AirlineTool } from './db-access.js';
import {
  NEW_CERTIFICATE_IDS,
  getFlight,
  getFlightDate,
  getReservation,
  getUser,
  has,
  keyError,
  operand,
  payForUpdate,
  pyEq,
} from './db-access.js';
import type { FlightDateAvailable, Payment, Reservation, ReservationFlight } from './model.js';
import {
  ModelBuilder,
  allDicts,
  construct,
  flightInfoModel,
  passengerModel,
  paymentModel,
  pyTypeName,
} from './validation.js';

const s = (description: string) => ({ type: 'string', description });

function params(properties: Record<string, unknown>): JsonSchemaObject {
  return { type: 'object', properties, required: Object.keys(properties) };
}

/** Item schema of a flight list (extra keys are accepted and ignored). */
export const FLIGHT_INFO_SCHEMA = {
  type: 'object',
  properties: {
    flight_number: s("Flight number, such as 'HAT001'."),
    date: s("Flight date in the format 'YYYY-MM-DD', such as '2024-05-01'."),
  },
  required: ['flight_number', 'date'],
};

/** Item schema of a passenger list (extra keys are accepted and ignored). */
export const PASSENGER_SCHEMA = {
  type: 'object',
  properties: {
    first_name: s("Passenger's first name."),
    last_name: s("Passenger's last name."),
    dob: s("Date of birth in the format 'YYYY-MM-DD'."),
  },
  required: ['first_name', 'last_name', 'dob'],
};

const PAYMENT_ID = s("A payment method id from the user's profile, such as 'credit_card_7815826' or 'gift_card_7815826'.");
const RESERVATION_ID = s("The reservation id, such as 'ZFA04Y'.");

export type FlightInfo = { flight_number: string; date: string };

/**
 * `[FlightInfo(**f) for f in flights]` when all are dicts (throws `N validation error(s) for FlightInfo`);
 * otherwise the reference keeps the raw list, and the first use of an item fails: `use` is then the error.
 */
export function flightInfos(flights: unknown[]): { infos: FlightInfo[] } | { use: ToolError } {
  if (allDicts(flights)) return { infos: flights.map((f) => construct('FlightInfo', flightInfoModel, f)) };
  return { use: new ToolError(`'${pyTypeName(flights[0])}' object has no attribute 'flight_number'`) };
}

export const cancelReservation: AirlineTool = {
  name: 'cancel_reservation',
  description: 'Cancel a whole reservation; every payment is refunded to its original payment method.',
  parameters: params({ reservation_id: RESERVATION_ID }),
  type: 'WRITE',
  run: (state, args) => {
    const id = args.reservation_id;
    const reservation = getReservation(state, id);
    const refunds: Payment[] = reservation.payment_history.map((p) =>
      construct('Payment', paymentModel, { payment_id: p.payment_id, amount: -p.amount }),
    );
    const r = state.db.edit<Reservation>('reservations', id as string);
    r.payment_history = [...r.payment_history, ...refunds];
    r.status = 'cancelled';
    return r;
  },
};

export const updateReservationPassengers: AirlineTool = {
  name: 'update_reservation_passengers',
  description: 'Replace the passengers of a reservation; the number of passengers must stay the same.',
  parameters: params({
    reservation_id: RESERVATION_ID,
    passengers: { type: 'array', items: PASSENGER_SCHEMA, description: 'The full new list of passengers.' },
  }),
  type: 'WRITE',
  run: (state, args) => {
    const list = args.passengers as unknown[];
    const passengers = allDicts(list) ? list.map((p) => construct('Passenger', passengerModel, p)) : list;
    const reservation = getReservation(state, args.reservation_id);
    if (passengers.length !== reservation.passengers.length) throw new ToolError('Number of passengers does not match');
    // Raw assignment: a list that was not all dicts is stored as given.
    const r = state.db.edit<Reservation>('reservations', args.reservation_id as string);
    r.passengers = [...passengers];
    return r;
  },
};

export const updateReservationBaggages: AirlineTool = {
  name: 'update_reservation_baggages',
  description: 'Set the total and non-free bag counts of a reservation; each added non-free bag costs 50.',
  parameters: params({
    reservation_id: RESERVATION_ID,
    total_baggages: { type: 'integer', description: 'The new total number of bags.' },
    nonfree_baggages: { type: 'integer', description: 'The new number of paid (non-free) bags.' },
    payment_id: PAYMENT_ID,
  }),
  type: 'WRITE',
  run: (state, args) => {
    const id = args.reservation_id;
    const reservation = getReservation(state, id);
    getUser(state, reservation.user_id);
    const { total_baggages: total, nonfree_baggages: nonfree } = args;
    const current = reservation.nonfree_baggages;
    const added = operand(nonfree, '-', nonfree, current) - operand(current, '-', nonfree, current);
    payForUpdate(state, id as string, args.payment_id, 50 * (added > 0 ? added : 0)); // Python max(0, x)
    // Raw assignment keeps the arguments' Python types (1.0 stays a float).
    const r = state.db.edit<Reservation>('reservations', id as string);
    r.total_baggages = total;
    r.nonfree_baggages = nonfree;
    return r;
  },
};

export const updateReservationFlights: AirlineTool = {
  name: 'update_reservation_flights',
  description:
    'Change the cabin and/or flights of a reservation. List every flight of the new itinerary, changed or not; ' +
    'the price difference is charged to (or refunded on) the payment method.',
  parameters: params({
    reservation_id: RESERVATION_ID,
    cabin: s("The cabin class for all flights: 'basic_economy', 'economy' or 'business'."),
    flights: { type: 'array', items: FLIGHT_INFO_SCHEMA, description: 'All flights of the new reservation.' },
    payment_id: PAYMENT_ID,
  }),
  type: 'WRITE',
  run: (state, args) => {
    const { cabin } = args;
    const parsed = flightInfos(args.flights as unknown[]);
    const id = args.reservation_id;
    const reservation = getReservation(state, id);
    getUser(state, reservation.user_id);
    if ('use' in parsed) throw parsed.use;
    const n = reservation.passengers.length;
    let total = 0;
    const segments: ReservationFlight[] = [];
    for (const { flight_number: number, date } of parsed.infos) {
      const kept = reservation.flights.find(
        (f) => f.flight_number === number && f.date === date && pyEq(cabin, reservation.cabin),
      );
      if (kept) {
        total += kept.price * n;
        segments.push(kept);
        continue;
      }
      const flight = getFlight(state, number);
      const day = getFlightDate(state, number, date);
      if (day.status !== 'available') {
        throw new ToolError(`Flight ${pyStr(number)} not available on date ${pyStr(date)}`);
      }
      const { available_seats: seats, prices } = day as FlightDateAvailable;
      if (!has(seats, cabin)) throw keyError(cabin);
      if (seats[cabin]! < n) throw new ToolError(`Not enough seats on flight ${pyStr(number)}`);
      if (!has(prices, cabin)) throw keyError(cabin);
      const price = prices[cabin]!;
      segments.push({
        flight_number: number,
        origin: flight.origin,
        destination: flight.destination,
        date,
        price,
      });
      total += price * n;
    }
    total -= reservation.flights.reduce((sum, f) => sum + f.price, 0) * n;
    payForUpdate(state, id as string, args.payment_id, total);
    const r = state.db.edit<Reservation>('reservations', id as string);
    r.flights = segments;
    r.cabin = cabin;
    return r;
  },
};

export const sendCertificate: AirlineTool = {
  name: 'send_certificate',
  description: "Add a travel certificate of the given amount to a user's payment methods (compensation).",
  parameters: params({
    user_id: s("The user id, such as 'sara_doe_496'."),
    amount: { type: 'integer', description: 'The certificate amount.' },
  }),
  type: 'WRITE',
  run: (state, args) => {
    const { user_id: userId, amount } = args;
    const user = getUser(state, userId);
    const id = NEW_CERTIFICATE_IDS.find((c) => !has(user.payment_methods, c));
    if (!id) throw new ToolError('Too many certificates');
    const b = new ModelBuilder('Certificate', { id, amount, source: 'certificate' });
    const certificate = b.done({ source: b.literal('source', ['certificate'])!, id: b.str('id')!, amount: b.float('amount')! });
    state.db.edit('users', userId as string, 'payment_methods')[id] = certificate;
    return `Certificate ${id} added to user ${pyStr(userId)} with amount ${pyStr(amount)}.`;
  },
};

export const UPDATE_TOOLS = {
  cancelReservation,
  updateReservationPassengers,
  updateReservationBaggages,
  updateReservationFlights,
  sendCertificate,
};
