// book_reservation (TOOLS.md §2.2): validates the inputs into models, prices the flights, checks the payments,
// then charges, takes seats and stores the reservation, including the reference's duplicate-certificate partial mutation.

import { ToolError } from '../../domain.js';
import { PyFloat, pyNumberStr, pyStr } from '../../pyjson.js';
import type { AirlineTool } from './db-access.js';
import { NOW, getFlight, getFlightDate, getUser, has, keyError, newReservationId, operand } from './db-access.js';
import type { FlightDateAvailable, Reservation } from './model.js';
import { CABINS, FLIGHT_TYPES, INSURANCE } from './model.js';
import { FLIGHT_INFO_SCHEMA, PASSENGER_SCHEMA, flightInfos } from './update-tools.js';
import { ModelBuilder, allDicts, construct, nestedList, passengerModel, paymentModel } from './validation.js';

const s = (description: string) => ({ type: 'string', description });

const PAYMENT_SCHEMA = {
  type: 'object',
  properties: {
    payment_id: s("A payment method id from the user's profile, such as 'credit_card_7815826'."),
    amount: { type: 'integer', description: 'The amount charged to this payment method.' },
  },
  required: ['payment_id', 'amount'],
};

const PROPERTIES = {
  user_id: s("The id of the user booking, such as 'sara_doe_496'."),
  origin: s("The trip origin's IATA code, such as 'SFO'."),
  destination: s("The trip destination's IATA code, such as 'JFK'."),
  flight_type: s("'one_way' or 'round_trip'."),
  cabin: s("'basic_economy', 'economy' or 'business'."),
  flights: { type: 'array', items: FLIGHT_INFO_SCHEMA, description: 'Every flight segment of the trip.' },
  passengers: { type: 'array', items: PASSENGER_SCHEMA, description: 'The passengers.' },
  payment_methods: { type: 'array', items: PAYMENT_SCHEMA, description: 'How the total is split over payment methods.' },
  total_baggages: { type: 'integer', description: 'The total number of bags.' },
  nonfree_baggages: { type: 'integer', description: 'The number of paid (non-free) bags.' },
  insurance: s("Travel insurance: 'yes' or 'no'."),
};

/** `[Model(**x) for x in items]` when all are dicts; otherwise the raw list, validated later inside Reservation. */
function modelsIfDicts(model: string, fn: (b: ModelBuilder) => unknown, items: unknown[]): unknown[] {
  return allDicts(items) ? items.map((x) => construct(model, fn, x)) : items;
}

export const bookReservation: AirlineTool = {
  name: 'book_reservation',
  description:
    'Book a new reservation for a user: flights, passengers, cabin, baggage, insurance, and the payment methods ' +
    'that together pay exactly the total price.',
  parameters: { type: 'object', properties: PROPERTIES, required: Object.keys(PROPERTIES) },
  type: 'WRITE',
  run: (state, args) => {
    const parsedFlights = flightInfos(args.flights as unknown[]);
    const passengerList = modelsIfDicts('Passenger', passengerModel, args.passengers as unknown[]);
    const paymentList = modelsIfDicts('Payment', paymentModel, args.payment_methods as unknown[]);
    const user = getUser(state, args.user_id);
    const userId = args.user_id as string;
    const reservationId = newReservationId(state);

    // Reservation(...): validates the literals, coerces the bag counts, and checks non-dict list items.
    const b = new ModelBuilder('Reservation', {
      reservation_id: reservationId,
      user_id: userId,
      origin: args.origin,
      destination: args.destination,
      flight_type: args.flight_type,
      cabin: args.cabin,
      total_baggages: args.total_baggages,
      nonfree_baggages: args.nonfree_baggages,
      insurance: args.insurance,
    });
    const reservation: Reservation = {
      reservation_id: b.str('reservation_id')!,
      user_id: b.str('user_id')!,
      origin: b.str('origin')!,
      destination: b.str('destination')!,
      flight_type: b.literal('flight_type', FLIGHT_TYPES)!,
      cabin: b.literal('cabin', CABINS)!,
      flights: [],
      passengers: nestedList(b, 'passengers', 'Passenger', passengerModel, passengerList),
      payment_history: nestedList(b, 'payment_history', 'Payment', paymentModel, paymentList),
      created_at: NOW,
      total_baggages: b.int('total_baggages')!,
      nonfree_baggages: b.int('nonfree_baggages')!,
      insurance: b.literal('insurance', INSURANCE)!,
      status: null,
    };
    b.done(reservation);
    const cabin = reservation.cabin as string;
    const n = reservation.passengers.length;
    const payments = reservation.payment_history;

    if ('use' in parsedFlights) throw parsedFlights.use;
    let total = 0;
    const taken: { flight: string; date: string }[] = [];
    for (const info of parsedFlights.infos) {
      const flight = getFlight(state, info.flight_number);
      const day = getFlightDate(state, info.flight_number, info.date);
      if (day.status !== 'available') {
        throw new ToolError(`Flight ${info.flight_number} not available on date ${info.date}`);
      }
      const { available_seats: seats, prices } = day as FlightDateAvailable;
      if (!has(seats, cabin)) throw keyError(cabin);
      if (seats[cabin]! < n) throw new ToolError(`Not enough seats on flight ${info.flight_number}`);
      if (!has(prices, cabin)) throw keyError(cabin);
      const price = prices[cabin]!;
      reservation.flights.push({
        flight_number: info.flight_number,
        origin: flight.origin,
        destination: flight.destination,
        date: info.date,
        price,
      });
      taken.push({ flight: info.flight_number, date: info.date });
      total += price * n;
    }
    if (reservation.insurance === 'yes') total += 30 * n;
    // The fee uses the argument as given: a float `1.0` makes the total a Python float.
    const nonfree = args.nonfree_baggages;
    if (typeof nonfree === 'string') throw new ToolError("unsupported operand type(s) for +=: 'int' and 'str'");
    total += 50 * operand(nonfree, '*', 50, nonfree);
    const totalIsFloat = nonfree instanceof PyFloat;

    for (const p of payments) {
      if (!has(user.payment_methods, p.payment_id)) throw new ToolError(`Payment method ${pyStr(p.payment_id)} not found`);
      const method = user.payment_methods[p.payment_id]!;
      if (method.source !== 'credit_card' && method.amount < p.amount) {
        throw new ToolError(`Not enough balance in payment method ${p.payment_id}`);
      }
    }
    const paid = payments.reduce((sum, p) => sum + p.amount, 0);
    if (paid !== total) {
      throw new ToolError(
        `Payment amount does not add up, total price is ${pyNumberStr(total, totalIsFloat)}, but paid ${pyNumberStr(paid, false)}`,
      );
    }

    // Checks passed: charge in list order. A certificate listed twice fails on its second removal, after the
    // earlier charges (partial mutation, as in the reference).
    for (const p of payments) {
      const methods = state.db.root.users[userId]!.payment_methods;
      if (!has(methods, p.payment_id)) throw keyError(p.payment_id);
      const method = methods[p.payment_id]!;
      if (method.source === 'gift_card') {
        state.db.edit('users', userId, 'payment_methods', p.payment_id).amount -= p.amount;
      } else if (method.source === 'certificate') {
        delete state.db.edit('users', userId, 'payment_methods')[p.payment_id];
      }
    }
    for (const t of taken) {
      state.db.edit('flights', t.flight, 'dates', t.date, 'available_seats')[cabin] -= n;
    }
    state.db.edit('reservations')[reservationId] = reservation;
    state.db.edit<string[]>('users', userId, 'reservations').push(reservationId);
    return reservation;
  },
};
