// The airline READ tools (TOOLS.md §2.2): user, reservation and flight-status lookups, the fixed airport
// list, and direct / one-stop flight search with the reference's date and time-comparison quirks.

import type { JsonSchemaObject } from '../../domain.js';
import type { AirlineTool, AirlineState } from './db-access.js';
import { getFlightDate, getReservation, getUser, has } from './db-access.js';
import type { FlightDateAvailable } from './model.js';

const s = (description: string) => ({ type: 'string', description });

function params(properties: Record<string, unknown>): JsonSchemaObject {
  return { type: 'object', properties, required: Object.keys(properties) };
}

const AIRPORTS: [string, string][] = [
  ['SFO', 'San Francisco'],
  ['JFK', 'New York'],
  ['LAX', 'Los Angeles'],
  ['ORD', 'Chicago'],
  ['DFW', 'Dallas'],
  ['DEN', 'Denver'],
  ['SEA', 'Seattle'],
  ['ATL', 'Atlanta'],
  ['MIA', 'Miami'],
  ['BOS', 'Boston'],
  ['PHX', 'Phoenix'],
  ['IAH', 'Houston'],
  ['LAS', 'Las Vegas'],
  ['MCO', 'Orlando'],
  ['EWR', 'Newark'],
  ['CLT', 'Charlotte'],
  ['MSP', 'Minneapolis'],
  ['DTW', 'Detroit'],
  ['PHL', 'Philadelphia'],
  ['LGA', 'LaGuardia'],
];

/** A search result in DirectFlight field order (not stored; `date` is null in direct search). */
interface DirectFlight {
  flight_number: string;
  origin: string;
  destination: string;
  status: 'available';
  scheduled_departure_time_est: string;
  scheduled_arrival_time_est: string;
  date: string | null;
  available_seats: Record<string, number>;
  prices: Record<string, number>;
}

/**
 * Flights in DB order that are `available` on `date`, filtered by origin / destination when given (null means
 * any) and by departure time `>= leaveAfter` compared as plain strings.
 */
function searchDirect(
  state: AirlineState,
  date: unknown,
  origin: unknown,
  destination: unknown,
  leaveAfter: string | null,
): DirectFlight[] {
  const results: DirectFlight[] = [];
  for (const f of Object.values(state.db.root.flights)) {
    if (origin !== null && f.origin !== origin) continue;
    if (destination !== null && f.destination !== destination) continue;
    if (!has(f.dates, date)) continue;
    const d = f.dates[date]!;
    if (d.status !== 'available') continue;
    if (leaveAfter !== null && !(f.scheduled_departure_time_est >= leaveAfter)) continue;
    const avail = d as FlightDateAvailable;
    results.push({
      flight_number: f.flight_number,
      origin: f.origin,
      destination: f.destination,
      status: 'available',
      scheduled_departure_time_est: f.scheduled_departure_time_est,
      scheduled_arrival_time_est: f.scheduled_arrival_time_est,
      date: null,
      available_seats: avail.available_seats,
      prices: avail.prices,
    });
  }
  return results;
}

export const getUserDetails: AirlineTool = {
  name: 'get_user_details',
  description: 'Get a user profile: name, address, payment methods, saved passengers, membership and reservation ids.',
  parameters: params({ user_id: s("The user id, such as 'sara_doe_496'.") }),
  type: 'READ',
  run: (state, args) => getUser(state, args.user_id),
};

export const getReservationDetails: AirlineTool = {
  name: 'get_reservation_details',
  description: 'Get a reservation: flights, passengers, payments, baggage, insurance and status.',
  parameters: params({ reservation_id: s("The reservation id, such as '8JX2WO'.") }),
  type: 'READ',
  run: (state, args) => getReservation(state, args.reservation_id),
};

export const getFlightStatus: AirlineTool = {
  name: 'get_flight_status',
  description: 'Get the status of a flight on a date (available, on time, delayed, flying, landed or cancelled).',
  parameters: params({
    flight_number: s("The flight number, such as 'HAT001'."),
    date: s("The date in the format 'YYYY-MM-DD', such as '2024-05-01'."),
  }),
  type: 'READ',
  run: (state, args) => getFlightDate(state, args.flight_number, args.date).status,
};

export const listAllAirports: AirlineTool = {
  name: 'list_all_airports',
  description: 'List the IATA codes and cities of all airports served.',
  parameters: params({}),
  type: 'READ',
  run: () => AIRPORTS.map(([iata, city]) => ({ iata, city })),
};

const searchParams = params({
  origin: s("The origin airport's IATA code, such as 'JFK'."),
  destination: s("The destination airport's IATA code, such as 'LAX'."),
  date: s("The departure date in the format 'YYYY-MM-DD', such as '2024-05-01'."),
});

export const searchDirectFlight: AirlineTool = {
  name: 'search_direct_flight',
  description: 'Search bookable direct flights between two airports on a date, with seats left and prices per cabin.',
  parameters: searchParams,
  type: 'READ',
  run: (state, args) => searchDirect(state, args.date, args.origin, args.destination, null),
};

export const searchOnestopFlight: AirlineTool = {
  name: 'search_onestop_flight',
  description: 'Search bookable one-stop connections between two airports departing on a date; returns pairs of legs.',
  parameters: searchParams,
  type: 'READ',
  run: (state, args) => {
    const { origin, destination, date } = args;
    const results: [DirectFlight, DirectFlight][] = [];
    for (const leg1 of searchDirect(state, date, origin, null, null)) {
      leg1.date = date as string;
      // Reference quirk: the next day is not zero-padded ("2024-05-6") and ignores month ends.
      const date2 = leg1.scheduled_arrival_time_est.includes('+1')
        ? `2024-05-${Number.parseInt(String(date).slice(-2), 10) + 1}`
        : date;
      for (const leg2 of searchDirect(state, date2, leg1.destination, destination, leg1.scheduled_arrival_time_est)) {
        leg2.date = date2 as string;
        results.push([leg1, leg2]);
      }
    }
    return results;
  },
};

export const READ_TOOLS = {
  getUserDetails,
  getReservationDetails,
  getFlightStatus,
  listAllAirports,
  searchDirectFlight,
  searchOnestopFlight,
};
