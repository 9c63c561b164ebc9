// Airline domain parity: replays every gold action of both oracle files (outputs, error flags, DB hashes) and
// pins the reference quirks of TOOLS.md §2 that the oracle does not exercise.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { describeTau2, tau2DomainDir } from '../../../../test/fixtures/tau2-data.js';
import { CowStore } from '../../cow-store.js';
import { dbHash } from '../../db-hash.js';
import type { Domain, DomainState } from '../../domain.js';
import { PyFloat, parsePyJson, pyDumps } from '../../pyjson.js';
import { findTool, runTool, validateToolArguments } from '../../tool-runner.js';
import { loadAirlineDomain } from './index.js';
import type { AirlineDb } from './model.js';

interface GoldAction {
  name: string;
  arguments: Record<string, unknown>;
  output: string;
  error: boolean;
  db_hash_after?: string;
}
interface Oracle {
  initial_db_hash: string;
  tasks: { id: string; gold_actions: GoldAction[]; final_db_hash: string }[];
}

const dir = tau2DomainDir('airline');
const ORACLES = ['gold_replay_reference.json', 'gold_replay_reference_release_37199f3.json'];

function readOracle(file: string): Oracle | undefined {
  const path = join(dir, file);
  return existsSync(path) ? (parsePyJson(readFileSync(path, 'utf8')) as Oracle) : undefined;
}

describeTau2('airline', 'airline domain', () => {
  let domain: Domain<AirlineDb>;
  let initialHash: string;
  beforeAll(() => {
    domain = loadAirlineDomain(dir);
    initialHash = dbHash(domain.initialDb, domain.isFloatField);
  });

  const fresh = (): DomainState<AirlineDb> => ({ db: new CowStore(domain.initialDb) });
  const hash = (state: DomainState<AirlineDb>) => dbHash(state.db.root, domain.isFloatField);
  /** Runs a tool through schema validation, as the sandbox does. */
  const call = (state: DomainState<AirlineDb>, name: string, args: Record<string, unknown>) => {
    const tool = findTool(domain, name);
    if (!tool) throw new Error(`no tool ${name}`);
    validateToolArguments(tool, args);
    return runTool(domain, state, tool, args);
  };
  /** Runs a tool without schema validation (how the reference sees out-of-schema arguments). */
  const direct = (state: DomainState<AirlineDb>, name: string, args: Record<string, unknown>) =>
    runTool(domain, state, findTool(domain, name)!, args);

  it('loads the model dump whose hash is the oracle initial hash', () => {
    expect(initialHash).toBe('124e39a664b56402bcd09cb8a6a9cece6acb8462337c969799d5658e3250f263');
    expect(domain.tools.filter((t) => t.type === 'WRITE').map((t) => t.name).sort()).toEqual([
      'book_reservation',
      'cancel_reservation',
      'send_certificate',
      'update_reservation_baggages',
      'update_reservation_flights',
      'update_reservation_passengers',
    ]);
    expect(domain.tools.map((t) => t.type).filter((t) => t === 'READ')).toHaveLength(6);
    expect(domain.tools.filter((t) => t.type === 'GENERIC').map((t) => t.name)).toEqual([
      'calculate',
      'transfer_to_human_agents',
    ]);
    expect(domain.initialDb.reservations['4WQ150']!.status).toBeNull();
    expect(Object.keys(domain.initialDb.flights['HAT001']!)[0]).toBe('flight_number');
  });

  it('names the file when db.json is missing', () => {
    expect(() => loadAirlineDomain('/nonexistent/airline')).toThrow(/\/nonexistent\/airline\/db\.json/);
  });

  for (const file of ORACLES) {
    const oracle = readOracle(file);
    describe(`gold replay: ${file}`, () => {
      it('has the same initial hash', () => expect(oracle?.initial_db_hash).toBe(initialHash));
      for (const task of oracle?.tasks ?? []) {
        it(`task ${task.id}`, () => {
          const state = fresh();
          task.gold_actions.forEach((action, i) => {
            const where = `task ${task.id} action ${i} ${action.name}`;
            const got = call(state, action.name, action.arguments);
            expect({ where, ...got }).toEqual({ where, output: action.output, error: action.error });
            if (action.db_hash_after !== undefined) expect(hash(state), where).toBe(action.db_hash_after);
          });
          // No edit at all leaves the shared (frozen) initial DB in place: its hash is the initial hash.
          if (state.db.root === domain.initialDb) expect(task.final_db_hash).toBe(initialHash);
          else expect(hash(state)).toBe(task.final_db_hash);
        });
      }
    });
  }

  describe('quirks', () => {
    const mia = 'mia_li_3668';
    // HAT136 JFK→ATL (economy 152) + HAT039 ATL→SEA (economy 103) on 2024-05-20: 255 for one passenger.
    const booking = (over: Record<string, unknown> = {}) => ({
      user_id: mia,
      origin: 'JFK',
      destination: 'SEA',
      flight_type: 'one_way',
      cabin: 'economy',
      flights: [
        { flight_number: 'HAT136', date: '2024-05-20' },
        { flight_number: 'HAT039', date: '2024-05-20' },
      ],
      passengers: [{ first_name: 'Mia', last_name: 'Li', dob: '1990-04-05' }],
      payment_methods: [{ payment_id: 'credit_card_4421486', amount: 255 }],
      total_baggages: 0,
      nonfree_baggages: 0,
      insurance: 'no',
      ...over,
    });

    it('cancelling twice refunds every entry again, including the refunds', () => {
      const state = fresh();
      expect(call(state, 'cancel_reservation', { reservation_id: 'AIXC49' }).error).toBe(false);
      const again = call(state, 'cancel_reservation', { reservation_id: 'AIXC49' });
      expect(again.error).toBe(false);
      const r = state.db.root.reservations['AIXC49']!;
      expect(r.payment_history.map((p) => p.amount)).toEqual([123, -123, -123, 123]);
      expect(r.status).toBe('cancelled');
      expect(again.output).toContain('"status": "cancelled"');
    });

    it('one-stop search: unpadded next-day date and string comparison of times', () => {
      const state = fresh();
      const pairs = (date: string) =>
        JSON.parse(call(state, 'search_onestop_flight', { origin: 'LGA', destination: 'LGA', date }).output) as {
          flight_number: string;
          date: string;
        }[][];
      // HAT002 LGA→PHX arrives "01:30:00+1": HAT066 (21:00:00) connects next day, HAT051 ("01:00:00" < "01:30:00+1") not.
      const from002 = pairs('2024-05-20').filter(([a]) => a!.flight_number === 'HAT002');
      expect(from002.map(([, b]) => b!.flight_number)).toContain('HAT066');
      expect(from002.map(([, b]) => b!.flight_number)).not.toContain('HAT051');
      expect(from002.every(([a, b]) => a!.date === '2024-05-20' && b!.date === '2024-05-21')).toBe(true);
      // Make both legs bookable early in the month: the second leg is looked up on "2024-05-6", not "2024-05-06".
      const avail = state.db.root.flights['HAT066']!.dates['2024-05-20']!;
      state.db.edit('flights', 'HAT002', 'dates')['2024-05-05'] = state.db.root.flights['HAT002']!.dates['2024-05-20'];
      state.db.edit('flights', 'HAT066', 'dates')['2024-05-06'] = avail;
      expect(pairs('2024-05-05').filter(([a]) => a!.flight_number === 'HAT002')).toEqual([]);
      state.db.edit('flights', 'HAT066', 'dates')['2024-05-6'] = avail;
      const unpadded = pairs('2024-05-05').filter(([a]) => a!.flight_number === 'HAT002');
      expect(unpadded.map(([, b]) => [b!.flight_number, b!.date])).toEqual([['HAT066', '2024-05-6']]);
    });

    it('baggage counts are assigned raw: a float 1.0 is stored and hashed as 1.0', () => {
      const asFloat = fresh();
      const asInt = fresh();
      const args = { reservation_id: 'AIXC49', total_baggages: 1, payment_id: 'credit_card_4421486' };
      const f = call(asFloat, 'update_reservation_baggages', { ...args, nonfree_baggages: new PyFloat(1) });
      const i = call(asInt, 'update_reservation_baggages', { ...args, nonfree_baggages: 1 });
      expect(f.output).toContain('"total_baggages": 1, "nonfree_baggages": 1.0,');
      expect(i.output).toContain('"total_baggages": 1, "nonfree_baggages": 1,');
      expect(f.output).toContain('{"payment_id": "credit_card_4421486", "amount": 50}');
      expect(hash(asFloat)).not.toBe(hash(asInt));
      expect(pyDumps(asFloat.db.root.reservations['AIXC49'], { sortKeys: true })).toContain('"nonfree_baggages": 1.0');
    });

    it('a gift card pays an update and keeps a float balance', () => {
      const state = fresh();
      const user = 'mei_hernandez_8984';
      const res = state.db.root.users[user]!.reservations[0]!;
      const out = call(state, 'update_reservation_baggages', {
        reservation_id: res,
        total_baggages: 9,
        nonfree_baggages: 1 + (state.db.root.reservations[res]!.nonfree_baggages as number),
        payment_id: 'gift_card_5309492',
      });
      expect(out.error).toBe(false);
      const card = call(state, 'get_user_details', { user_id: user }).output;
      expect(card).toContain('{"source": "gift_card", "id": "gift_card_5309492", "amount": 48.0}');
      expect(call(state, 'update_reservation_baggages', {
        reservation_id: res,
        total_baggages: 9,
        nonfree_baggages: 99,
        payment_id: 'certificate_7502997',
      }).output).toBe('Error: Certificate cannot be used to update reservation');
    });

    it('a certificate is removed whatever amount of it was used', () => {
      const state = fresh();
      const out = call(state, 'book_reservation', booking({
        payment_methods: [
          { payment_id: 'certificate_4856383', amount: 50 },
          { payment_id: 'credit_card_4421486', amount: 205 },
        ],
      }));
      expect(out.error).toBe(false);
      expect(JSON.parse(out.output).reservation_id).toBe('HATHAT');
      const methods = state.db.root.users[mia]!.payment_methods;
      expect(Object.keys(methods)).not.toContain('certificate_4856383');
      expect(methods['certificate_7504069']).toEqual({ source: 'certificate', id: 'certificate_7504069', amount: 250 });
      expect(state.db.root.users[mia]!.reservations.at(-1)).toBe('HATHAT');
      expect(state.db.root.flights['HAT136']!.dates['2024-05-20']).toMatchObject({ available_seats: { economy: 13 } });
    });

    it('reports a payment mismatch with plain ints, and a float total when the bag count was a float', () => {
      const state = fresh();
      // HAT028 economy costs 195 on 2024-05-20.
      const out = call(state, 'book_reservation', booking({
        flights: [{ flight_number: 'HAT028', date: '2024-05-20' }],
        payment_methods: [{ payment_id: 'credit_card_4421486', amount: 100 }],
      }));
      expect(out).toEqual({ output: 'Error: Payment amount does not add up, total price is 195, but paid 100', error: true });
      const float = call(state, 'book_reservation', booking({ nonfree_baggages: new PyFloat(1) }));
      expect(float.output).toBe('Error: Payment amount does not add up, total price is 305.0, but paid 255');
      expect(hash(state)).toBe(initialHash);
    });

    it('a certificate listed twice fails after the earlier charges (partial mutation)', () => {
      const state = fresh();
      const user = 'mei_hernandez_8984';
      const before = state.db.root.users[user]!;
      const out = call(state, 'book_reservation', booking({
        user_id: user,
        payment_methods: [
          { payment_id: 'gift_card_5309492', amount: 50 },
          { payment_id: 'certificate_7502997', amount: 100 },
          { payment_id: 'certificate_7502997', amount: 105 },
        ],
      }));
      expect(out).toEqual({ output: "Error: 'certificate_7502997'", error: true });
      const after = state.db.root.users[user]!;
      expect(after.payment_methods['gift_card_5309492']).toMatchObject({ amount: 48 });
      expect(after.payment_methods['certificate_7502997']).toBeUndefined();
      expect(after.payment_methods['certificate_3321326']).toBeDefined();
      expect(after.reservations).toEqual(before.reservations);
      expect(state.db.root.reservations['HATHAT']).toBeUndefined();
      expect(state.db.root.flights['HAT136']!.dates['2024-05-20']).toMatchObject({ available_seats: { economy: 14 } });
      expect(hash(state)).not.toBe(initialHash);
    });

    it('an invalid cabin in a flight update is a KeyError and changes nothing', () => {
      const state = fresh();
      const out = direct(state, 'update_reservation_flights', {
        reservation_id: 'AIXC49',
        cabin: 'first',
        flights: [
          { flight_number: 'HAT094', date: '2024-05-20' },
          { flight_number: 'HAT294', date: '2024-05-20' },
        ],
        payment_id: 'credit_card_4421486',
      });
      expect(out).toEqual({ output: "Error: 'first'", error: true });
      expect(hash(state)).toBe(initialHash);
    });

    it('send_certificate prints the amount as given, stores a float and takes the next free id', () => {
      const state = fresh();
      const user = 'mia_li_3668';
      expect(call(state, 'send_certificate', { user_id: user, amount: 50 }).output).toBe(
        `Certificate certificate_3221322 added to user ${user} with amount 50.`,
      );
      expect(call(state, 'send_certificate', { user_id: user, amount: new PyFloat(50) }).output).toBe(
        `Certificate certificate_3221323 added to user ${user} with amount 50.0.`,
      );
      expect(direct(state, 'send_certificate', { user_id: user, amount: '7' }).output).toBe(
        `Certificate certificate_3221324 added to user ${user} with amount 7.`,
      );
      expect(call(state, 'send_certificate', { user_id: user, amount: 1 }).output).toBe('Error: Too many certificates');
      const details = call(state, 'get_user_details', { user_id: user }).output;
      expect(details).toContain('"certificate_3221322": {"source": "certificate", "id": "certificate_3221322", "amount": 50.0}');
      expect(details).toContain('"certificate_3221324": {"source": "certificate", "id": "certificate_3221324", "amount": 7.0}');
      expect(call(state, 'send_certificate', { user_id: 'nobody', amount: 1 }).output).toBe('Error: User nobody not found');
    });

    it('new reservations take HATHAT, HATHAU, HATHAV, then fail', () => {
      const state = fresh();
      const ids = [0, 1, 2, 3].map((i) => {
        const out = call(state, 'book_reservation', booking({ payment_methods: [{ payment_id: 'credit_card_4421486', amount: 255 }] }));
        return out.error ? out.output : (JSON.parse(out.output) as { reservation_id: string }).reservation_id + i;
      });
      expect(ids).toEqual(['HATHAT0', 'HATHAU1', 'HATHAV2', 'Error: Too many reservations']);
      expect(state.db.root.flights['HAT039']!.dates['2024-05-20']).toMatchObject({ available_seats: { economy: 7 } });
    });

    it('constructed models coerce ints and report validation errors like pydantic', () => {
      const state = fresh();
      const ok = direct(state, 'book_reservation', booking({ total_baggages: '2', nonfree_baggages: new PyFloat(0) }));
      expect(ok.error).toBe(false);
      expect(ok.output).toContain('"total_baggages": 2, "nonfree_baggages": 0,');
      const frac = direct(state, 'book_reservation', booking({ total_baggages: 2.5 }));
      expect(frac.output).toMatch(/^Error: 1 validation error for Reservation\ntotal_baggages\n {2}Input should be a valid integer/);
      const lit = direct(state, 'book_reservation', booking({ cabin: 'first', insurance: 'maybe' }));
      expect(lit.output).toMatch(/^Error: 2 validation errors for Reservation\ncabin\n.*\ninsurance\n/);
    });

    it('passenger updates validate each passenger, drop extra keys and keep the count', () => {
      const state = fresh();
      const bad = direct(state, 'update_reservation_passengers', {
        reservation_id: 'AIXC49',
        passengers: [{ first_name: 'A', last_name: 'B' }],
      });
      expect(bad.output).toMatch(/^Error: 1 validation error for Passenger\ndob\n {2}Field required/);
      const count = call(state, 'update_reservation_passengers', { reservation_id: 'AIXC49', passengers: [] });
      expect(count.output).toBe('Error: Number of passengers does not match');
      const good = call(state, 'update_reservation_passengers', {
        reservation_id: 'AIXC49',
        passengers: [{ first_name: 'A', last_name: 'B', dob: '2000-01-01', nickname: 'x' }],
      });
      expect(good.output).toContain('"passengers": [{"first_name": "A", "last_name": "B", "dob": "2000-01-01"}]');
    });

    it('lookups fail with the reference messages', () => {
      const state = fresh();
      expect(call(state, 'get_reservation_details', { reservation_id: 'NOPE' }).output).toBe('Error: Reservation NOPE not found');
      expect(call(state, 'get_flight_status', { flight_number: 'HAT999', date: '2024-05-20' }).output).toBe(
        'Error: Flight HAT999 not found',
      );
      expect(call(state, 'get_flight_status', { flight_number: 'HAT001', date: '2024-06-01' }).output).toBe(
        'Error: Flight HAT001 not found on date 2024-06-01',
      );
      expect(call(state, 'get_flight_status', { flight_number: 'HAT001', date: '2024-05-01' }).output).toBe('landed');
      expect(JSON.parse(call(state, 'list_all_airports', {}).output)).toHaveLength(20);
      expect(call(state, 'search_direct_flight', { origin: 'XXX', destination: 'YYY', date: '2024-05-20' }).output).toBe('[]');
      expect(hash(state)).toBe(initialHash);
    });
  });
});
