// Retail domain parity: replays every gold action of both oracle files (outputs, error flags, DB hashes),
// checks copy-on-write isolation, and pins reference quirks of TOOLS.md §3 that the oracle does not exercise.

import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { describeTau2, tau2DomainDir } from '../../../../test/fixtures/tau2-data.js';
import { CowStore } from '../../cow-store.js';
import { dbHash } from '../../db-hash.js';
import type { Domain, DomainState } from '../../domain.js';
import { parsePyJson } from '../../pyjson.js';
import { findTool, runTool, validateToolArguments } from '../../tool-runner.js';
import { loadRetailDomain } from './index.js';
import type { RetailDb } from './model.js';

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

const dir = tau2DomainDir('retail');
const ORACLES = ['gold_replay_reference.json', 'gold_replay_reference_release_37199f3.json'];
const INITIAL_HASH = 'b25c9cb211f5efcaee5dd646054a73c4a9f43f4f5acc32c10713cd9f9ac20e9c';

function readOracle(file: string): Oracle | undefined {
  const path = join(dir, file);
  return existsSync(path) ? (parsePyJson(readFileSync(path, 'utf8')) as Oracle) : undefined;
}

describeTau2('retail', 'retail domain', () => {
  let domain: Domain<RetailDb>;
  beforeAll(() => {
    domain = loadRetailDomain(dir);
  });

  const fresh = (): DomainState<RetailDb> => ({ db: new CowStore(domain.initialDb) });
  const hash = (state: DomainState<RetailDb>) => dbHash(state.db.root, domain.isFloatField);
  /** Runs a tool through schema validation, as the sandbox does. */
  const call = (state: DomainState<RetailDb>, name: string, args: Record<string, unknown>) => {
    const tool = findTool(domain, name);
    if (!tool) throw new Error(`no tool ${name}`);
    validateToolArguments(tool, args);
    return runTool(domain, state, tool, args);
  };
  const json = (output: string) => JSON.parse(output) as Record<string, any>;

  it('loads the model dump whose hash is the oracle initial hash', () => {
    expect(dbHash(domain.initialDb, domain.isFloatField)).toBe(INITIAL_HASH);
    expect(domain.tools).toHaveLength(16);
    expect(domain.tools.filter((t) => t.type === 'WRITE').map((t) => t.name).sort()).toEqual([
      'cancel_pending_order',
      'exchange_delivered_order_items',
      'modify_pending_order_address',
      'modify_pending_order_items',
      'modify_pending_order_payment',
      'modify_user_address',
      'return_delivered_order_items',
    ]);
    expect(domain.tools.filter((t) => t.type === 'GENERIC').map((t) => t.name)).toEqual([
      'calculate',
      'transfer_to_human_agents',
    ]);
    expect(domain.tools.find((t) => t.name === 'transfer_to_human_agents')?.terminal).toBe(true);
    const order = domain.initialDb.orders['#W2611340']!;
    expect(Object.keys(order)).toEqual([
      'order_id', 'user_id', 'address', 'items', 'status', 'fulfillments', 'payment_history', 'cancel_reason',
      'exchange_items', 'exchange_new_items', 'exchange_payment_method_id', 'exchange_price_difference',
      'return_items', 'return_payment_method_id',
    ]);
    expect(order.exchange_price_difference).toBeNull();
    expect(domain.policy).toMatch(/retail/i);
  });

  it('names the file when db.json is missing or invalid', () => {
    expect(() => loadRetailDomain('/nonexistent/retail')).toThrow(/\/nonexistent\/retail\/db\.json/);
    const bad = mkdtempSync(join(tmpdir(), 'retail-'));
    try {
      writeFileSync(join(bad, 'db.json'), '{"products": {}, "users": [], "orders": {}}');
      expect(() => loadRetailDomain(bad)).toThrow(`retail domain: bad ${join(bad, 'db.json')}: users: expected an object`);
      writeFileSync(join(bad, 'db.json'), '{"products": ');
      expect(() => loadRetailDomain(bad)).toThrow(/db\.json: invalid JSON at offset/);
    } finally {
      rmSync(bad, { recursive: true, force: true });
    }
  });

  for (const file of ORACLES) {
    const oracle = readOracle(file);
    describe(`gold replay: ${file}`, () => {
      it('has the same initial hash', () => expect(oracle?.initial_db_hash).toBe(INITIAL_HASH));
      for (const task of oracle?.tasks ?? []) {
        it(`task ${task.id}`, () => {
          const state = fresh();
          task.gold_actions.forEach((action, i) => {
            const where = `task ${task.id} action ${i} ${action.name}`;
            const got = call(state, action.name, action.arguments);
            expect({ where, ...got }).toEqual({ where, output: action.output, error: action.error });
            if (action.db_hash_after !== undefined) expect(hash(state), where).toBe(action.db_hash_after);
          });
          expect(hash(state)).toBe(task.final_db_hash);
        });
      }
    });
  }

  describe('copy-on-write isolation', () => {
    it('keeps a write in one session invisible to another and to the shared DB', () => {
      const a = fresh();
      const b = fresh();
      const out = call(a, 'cancel_pending_order', { order_id: PENDING, reason: 'ordered by mistake' });
      expect(out.error).toBe(false);
      expect(a.db.root.orders[PENDING]!.status).toBe('cancelled');
      expect(b.db.root.orders[PENDING]!.status).toBe('pending');
      expect(domain.initialDb.orders[PENDING]!.status).toBe('pending');
      expect(gift(b)).toBe(49);
      expect(hash(b)).toBe(INITIAL_HASH);
      expect(dbHash(domain.initialDb, domain.isFloatField)).toBe(INITIAL_HASH);
      expect(hash(a)).not.toBe(INITIAL_HASH);
    });

    it('leaves the DB untouched when a tool fails its checks', () => {
      const s = fresh();
      const out = call(s, 'cancel_pending_order', { order_id: PENDING, reason: 'too expensive' });
      expect(out).toEqual({ output: 'Error: Invalid reason', error: true });
      expect(hash(s)).toBe(INITIAL_HASH);
    });
  });

  // #W6779827 (ethan_lopez_6291, pending) was paid 4079.45 with gift_card_7219486 (balance 49.0).
  const PENDING = '#W6779827';
  const gift = (s: DomainState<RetailDb>) =>
    (s.db.root.users['ethan_lopez_6291']!.payment_methods['gift_card_7219486'] as { balance: number }).balance;

  describe('reference behaviour beyond the oracle', () => {
    it('credits a cancelled gift-card payment at once, rounded to cents, and dumps floats as floats', () => {
      const s = fresh();
      const out = call(s, 'cancel_pending_order', { order_id: PENDING, reason: 'no longer needed' });
      expect(gift(s)).toBe(4128.45);
      expect(out.output).toContain('"cancel_reason": "no longer needed", "exchange_items": null');
      expect(out.output).toContain(
        '"payment_history": [{"transaction_type": "payment", "amount": 4079.45, "payment_method_id": "gift_card_7219486"}, ' +
          '{"transaction_type": "refund", "amount": 4079.45, "payment_method_id": "gift_card_7219486"}]',
      );
      expect(call(s, 'get_user_details', { user_id: 'ethan_lopez_6291' }).output).toContain('"balance": 4128.45}');
      expect(call(fresh(), 'get_user_details', { user_id: 'ethan_lopez_6291' }).output).toContain('"balance": 49.0}');
    });

    it('gives every modified item the price and options of the last pair (upstream quirk)', () => {
      const s = fresh();
      const args = {
        order_id: PENDING,
        item_ids: ['7896397433', '1323134954'], // dumbbell set 457.81, coffee maker 236.95
        new_item_ids: ['2444431651', '3020722515'], // dumbbell set 534.84, coffee maker 238.64
        payment_method_id: 'credit_card_9789590',
      };
      expect(call(s, 'modify_pending_order_items', { ...args, payment_method_id: 'gift_card_7219486' })).toEqual({
        output: 'Error: Insufficient gift card balance to pay for the new item',
        error: true,
      });
      const out = json(call(s, 'modify_pending_order_items', args).output);
      const coffee = { color: 'black', capacity: '1 cup', type: 'french press', features: 'auto shutoff' };
      expect(out.items[0]).toMatchObject({ name: 'Dumbbell Set', item_id: '2444431651', price: 238.64, options: coffee });
      expect(out.items[2]).toMatchObject({ name: 'Coffee Maker', item_id: '3020722515', price: 238.64, options: coffee });
      expect(out.status).toBe('pending (item modified)');
      const diff = 0 + (534.84 - 457.81) + (238.64 - 236.95); // unrounded, in the reference's order
      expect(out.payment_history[1]).toEqual({ transaction_type: 'payment', amount: diff, payment_method_id: 'credit_card_9789590' });
      // Now neither a second modification, a cancel nor a payment change passes; an address change does.
      expect(call(s, 'modify_pending_order_items', args).output).toBe('Error: Non-pending order cannot be modified');
      expect(call(s, 'cancel_pending_order', { order_id: PENDING, reason: 'no longer needed' }).output).toBe(
        'Error: Non-pending order cannot be cancelled',
      );
      expect(call(s, 'modify_pending_order_payment', { order_id: PENDING, payment_method_id: 'gift_card_7219486' }).output).toBe(
        'Error: There should be exactly one payment for a pending order',
      );
      const address = { address1: '1 Main St', address2: '', city: 'Austin', state: 'TX', country: 'USA', zip: '78701' };
      expect(json(call(s, 'modify_pending_order_address', { order_id: PENDING, ...address }).output).address).toEqual({
        address1: '1 Main St', address2: '', city: 'Austin', country: 'USA', state: 'TX', zip: '78701',
      });
    });

    it('records a 0.0 refund for an empty modification and an int 0 difference for an empty exchange', () => {
      const s = fresh();
      const mod = call(s, 'modify_pending_order_items', {
        order_id: PENDING, item_ids: [], new_item_ids: [], payment_method_id: 'gift_card_7219486',
      });
      expect(mod.output).toContain('{"transaction_type": "refund", "amount": 0.0, "payment_method_id": "gift_card_7219486"}');
      const ex = call(s, 'exchange_delivered_order_items', {
        order_id: '#W7623533', item_ids: [], new_item_ids: [], payment_method_id: 'paypal_8673863',
      });
      expect(ex.output).toContain('"exchange_items": [], "exchange_new_items": [], "exchange_payment_method_id": "paypal_8673863", "exchange_price_difference": 0, ');
      expect(call(s, 'return_delivered_order_items', { order_id: '#W7623533', item_ids: [], payment_method_id: 'paypal_8673863' }).output).toBe(
        'Error: Non-delivered order cannot be returned',
      );
    });

    it('moves a payment between methods and restores the old gift card', () => {
      const s = fresh();
      const out = json(call(s, 'modify_pending_order_payment', { order_id: PENDING, payment_method_id: 'credit_card_9789590' }).output);
      expect(out.payment_history.slice(1)).toEqual([
        { transaction_type: 'payment', amount: 4079.45, payment_method_id: 'credit_card_9789590' },
        { transaction_type: 'refund', amount: 4079.45, payment_method_id: 'gift_card_7219486' },
      ]);
      expect(gift(s)).toBe(4128.45);
    });

    it('accepts only the original method or a gift card for a return', () => {
      const s = fresh();
      const args = { order_id: '#W7623533', item_ids: ['4772738468'], payment_method_id: 'credit_card_8278346' };
      expect(call(s, 'return_delivered_order_items', args).output).toBe('Error: Payment method should be the original payment method');
      expect(call(s, 'return_delivered_order_items', { ...args, item_ids: ['4772738468', '4772738468'], payment_method_id: 'paypal_8673863' }).output).toBe(
        'Error: Some item not found',
      );
      const out = json(call(s, 'return_delivered_order_items', { ...args, payment_method_id: 'paypal_8673863' }).output);
      expect(out).toMatchObject({ status: 'return requested', return_items: ['4772738468'], return_payment_method_id: 'paypal_8673863' });
    });

    it('finds users case-insensitively by email, and by name with an exact zip', () => {
      const s = fresh();
      expect(call(s, 'find_user_id_by_email', { email: 'Ethan.Lopez8943@EXAMPLE.com' }).output).toBe('ethan_lopez_6291');
      expect(call(s, 'find_user_id_by_name_zip', { first_name: 'ETHAN', last_name: 'lopez', zip: '43275' }).output).toBe('ethan_lopez_6291');
      expect(call(s, 'find_user_id_by_name_zip', { first_name: 'Ethan', last_name: 'Lopez', zip: '43276' })).toEqual({
        output: 'Error: User not found',
        error: true,
      });
    });

    it('lists product types as a sorted JSON string and keeps variants in file order', () => {
      const s = fresh();
      expect(call(s, 'list_all_product_types', {}).output).toMatch(/^\{"Action Camera": "3377618313", "Air Purifier": "3821016478", /);
      // Variant ids as db.json lists them (a variant's item_id is followed by its options; an order item's by its price).
      const fileOrder = [...readFileSync(join(dir, 'db.json'), 'utf8').matchAll(/"item_id": "(\d+)",\s+"options"/g)].map((m) => m[1]);
      for (const productId of ['1656367028', '9523456873', '3377618313']) {
        const variants = json(call(s, 'get_product_details', { product_id: productId }).output).variants as object;
        const ids = Object.values(variants).map((v: any) => v.item_id as string);
        const printed = [...call(s, 'get_product_details', { product_id: productId }).output.matchAll(/"item_id": "(\d+)"/g)].map((m) => m[1]);
        expect(printed).toEqual(fileOrder.filter((id) => ids.includes(id!)));
      }
      expect(call(s, 'get_item_details', { item_id: '2444431651' }).output).toBe(
        '{"item_id": "2444431651", "options": {"weight range": "55-75 lbs", "material": "iron", "set type": "fixed"}, "available": true, "price": 534.84}',
      );
    });

    it('rejects arguments outside the schema before the tool runs', () => {
      const tool = findTool(domain, 'get_order_details')!;
      expect(() => validateToolArguments(tool, {})).toThrow(/order_id/);
      expect(() => validateToolArguments(tool, { order_id: '#W1', extra: 1 })).toThrow(/extra/);
      expect(() => validateToolArguments(findTool(domain, 'return_delivered_order_items')!, {
        order_id: '#W1', item_ids: '4772738468', payment_method_id: 'x',
      })).toThrow(/item_ids/);
    });
  });
});
