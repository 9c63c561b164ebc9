// The retail DB as tau2's pydantic models dump it: db.json normalized into model field order with every
// optional field present (null), and which numbers are Python floats (TOOLS.md §1, §3.1).

import type { FloatFieldPredicate, PyInt } from '../../pyjson.js';
import { orderedEntries, type OrderedObject } from '../common/ordered-json.js';

export const ORDER_STATUSES = [
  'processed',
  'pending',
  'pending (item modified)',
  'delivered',
  'cancelled',
  'exchange requested',
  'return requested',
] as const;
export const CANCEL_REASONS = ['no longer needed', 'ordered by mistake'] as const;

export interface Variant {
  item_id: string;
  options: Record<string, string>;
  available: boolean;
  price: number;
}

/** `variants` is a Map: item ids are integer-like keys, which a JS object would reorder. */
export interface Product {
  name: string;
  product_id: string;
  variants: Map<string, Variant>;
}

/** UserAddress: all six fields are required strings (address2 may be empty). */
export interface Address {
  address1: string;
  address2: string;
  city: string;
  country: string;
  state: string;
  zip: string;
}

export type PaymentMethod =
  | { source: 'credit_card'; id: string; brand: string; last_four: string }
  | { source: 'paypal'; id: string }
  | { source: 'gift_card'; id: string; balance: number };

export interface User {
  user_id: string;
  name: { first_name: string; last_name: string };
  address: Address;
  email: string;
  payment_methods: Record<string, PaymentMethod>;
  orders: string[];
}

export interface OrderItem {
  name: string;
  product_id: string;
  item_id: string;
  price: number;
  options: Record<string, string>;
}

export interface Fulfillment {
  tracking_id: string[];
  item_ids: string[];
}

export interface OrderPayment {
  transaction_type: 'payment' | 'refund';
  amount: number;
  payment_method_id: string;
}

export interface Order {
  order_id: string;
  user_id: string;
  address: Address;
  items: OrderItem[];
  status: string;
  fulfillments: Fulfillment[];
  payment_history: OrderPayment[];
  cancel_reason: string | null;
  exchange_items: string[] | null;
  exchange_new_items: string[] | null;
  exchange_payment_method_id: string | null;
  /** A float, or a raw int 0 (PyInt) when an exchange had no items (TOOLS.md §3.2). */
  exchange_price_difference: number | PyInt | null;
  return_items: string[] | null;
  return_payment_method_id: string | null;
}

/**
 * `products` is a plain object even though some product ids are integer-like: its order is never visible
 * (lookups are by id, item ids and product names are unique, the hash sorts keys). Variant order is
 * visible (get_product_details), hence the Map in Product.
 */
export interface RetailDb {
  products: Record<string, Product>;
  users: Record<string, User>;
  orders: Record<string, Order>;
}

const FLOAT_FIELDS = new Set(['price', 'amount', 'balance', 'exchange_price_difference']);

/** Retail's float-typed fields: Variant/OrderItem.price, OrderPayment.amount, GiftCard.balance, Order.exchange_price_difference. */
export const isRetailFloatField: FloatFieldPredicate = (key) => FLOAT_FIELDS.has(key);

// ---- normalization (throws Error naming the JSON path of the first bad value) ----

type Json = Record<string, unknown>;

function ordered(v: unknown, path: string): OrderedObject {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error(`${path}: expected an object`);
  return v as OrderedObject;
}

function obj(v: unknown, path: string): Json {
  const o = ordered(v, path);
  return o instanceof Map ? Object.fromEntries(o) : o;
}

function str(v: unknown, path: string): string {
  if (typeof v !== 'string') throw new Error(`${path}: expected a string`);
  return v;
}

function num(v: unknown, path: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`${path}: expected a number`);
  return v;
}

function oneOf<T extends string>(v: unknown, choices: readonly T[], path: string): T {
  if (!choices.includes(v as T)) throw new Error(`${path}: expected one of ${choices.join(', ')}`);
  return v as T;
}

function strList(v: unknown, path: string): string[] {
  if (!Array.isArray(v)) throw new Error(`${path}: expected an array`);
  return v.map((x, i) => str(x, `${path}[${i}]`));
}

function strMap(v: unknown, path: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, x] of orderedEntries(ordered(v, path))) out[k] = str(x, `${path}.${k}`);
  return out;
}

function entriesOf<T>(v: unknown, path: string, each: (x: unknown, path: string) => T): [string, T][] {
  return orderedEntries(ordered(v, path)).map(([k, x]) => [k, each(x, `${path}[${JSON.stringify(k)}]`)]);
}

function mapOf<T>(v: unknown, path: string, each: (x: unknown, path: string) => T): Record<string, T> {
  const out: Record<string, T> = {};
  for (const [k, x] of entriesOf(v, path, each)) out[k] = x;
  return out;
}

function nullable<T>(v: unknown, path: string, each: (x: unknown, path: string) => T): T | null {
  return v === undefined || v === null ? null : each(v, path);
}

export function normalizeAddress(v: unknown, path: string): Address {
  const a = obj(v, path);
  return {
    address1: str(a.address1, `${path}.address1`),
    address2: str(a.address2, `${path}.address2`),
    city: str(a.city, `${path}.city`),
    country: str(a.country, `${path}.country`),
    state: str(a.state, `${path}.state`),
    zip: str(a.zip, `${path}.zip`),
  };
}

function normalizeProduct(v: unknown, path: string): Product {
  const p = obj(v, path);
  return {
    name: str(p.name, `${path}.name`),
    product_id: str(p.product_id, `${path}.product_id`),
    variants: new Map(entriesOf(p.variants, `${path}.variants`, (x, at) => {
      const o = obj(x, at);
      if (typeof o.available !== 'boolean') throw new Error(`${at}.available: expected a boolean`);
      return {
        item_id: str(o.item_id, `${at}.item_id`),
        options: strMap(o.options, `${at}.options`),
        available: o.available,
        price: num(o.price, `${at}.price`),
      };
    })),
  };
}

function normalizePaymentMethod(v: unknown, path: string): PaymentMethod {
  const m = obj(v, path);
  const source = oneOf(m.source, ['credit_card', 'paypal', 'gift_card'] as const, `${path}.source`);
  const id = str(m.id, `${path}.id`);
  if (source === 'credit_card') {
    return { source, id, brand: str(m.brand, `${path}.brand`), last_four: str(m.last_four, `${path}.last_four`) };
  }
  if (source === 'gift_card') return { source, id, balance: num(m.balance, `${path}.balance`) };
  return { source, id };
}

function normalizeUser(v: unknown, path: string): User {
  const u = obj(v, path);
  const name = obj(u.name, `${path}.name`);
  return {
    user_id: str(u.user_id, `${path}.user_id`),
    name: { first_name: str(name.first_name, `${path}.name.first_name`), last_name: str(name.last_name, `${path}.name.last_name`) },
    address: normalizeAddress(u.address, `${path}.address`),
    email: str(u.email, `${path}.email`),
    payment_methods: mapOf(u.payment_methods, `${path}.payment_methods`, normalizePaymentMethod),
    orders: strList(u.orders, `${path}.orders`),
  };
}

function normalizeOrder(v: unknown, path: string): Order {
  const o = obj(v, path);
  const list = (x: unknown, at: string): unknown[] => {
    if (!Array.isArray(x)) throw new Error(`${at}: expected an array`);
    return x;
  };
  return {
    order_id: str(o.order_id, `${path}.order_id`),
    user_id: str(o.user_id, `${path}.user_id`),
    address: normalizeAddress(o.address, `${path}.address`),
    items: list(o.items, `${path}.items`).map((x, i) => {
      const at = `${path}.items[${i}]`;
      const it = obj(x, at);
      return {
        name: str(it.name, `${at}.name`),
        product_id: str(it.product_id, `${at}.product_id`),
        item_id: str(it.item_id, `${at}.item_id`),
        price: num(it.price, `${at}.price`),
        options: strMap(it.options, `${at}.options`),
      };
    }),
    status: oneOf(o.status, ORDER_STATUSES, `${path}.status`),
    fulfillments: list(o.fulfillments, `${path}.fulfillments`).map((x, i) => {
      const at = `${path}.fulfillments[${i}]`;
      const f = obj(x, at);
      return { tracking_id: strList(f.tracking_id, `${at}.tracking_id`), item_ids: strList(f.item_ids, `${at}.item_ids`) };
    }),
    payment_history: list(o.payment_history, `${path}.payment_history`).map((x, i) => {
      const at = `${path}.payment_history[${i}]`;
      const p = obj(x, at);
      return {
        transaction_type: oneOf(p.transaction_type, ['payment', 'refund'] as const, `${at}.transaction_type`),
        amount: num(p.amount, `${at}.amount`),
        payment_method_id: str(p.payment_method_id, `${at}.payment_method_id`),
      };
    }),
    cancel_reason: nullable(o.cancel_reason, `${path}.cancel_reason`, (x, at) => oneOf(x, CANCEL_REASONS, at)),
    exchange_items: nullable(o.exchange_items, `${path}.exchange_items`, strList),
    exchange_new_items: nullable(o.exchange_new_items, `${path}.exchange_new_items`, strList),
    exchange_payment_method_id: nullable(o.exchange_payment_method_id, `${path}.exchange_payment_method_id`, str),
    exchange_price_difference: nullable(o.exchange_price_difference, `${path}.exchange_price_difference`, num),
    return_items: nullable(o.return_items, `${path}.return_items`, strList),
    return_payment_method_id: nullable(o.return_payment_method_id, `${path}.return_payment_method_id`, str),
  };
}

/**
 * Builds the model dump of a retail db.json parsed with parseOrderedJson: objects in model field order, optional order
 * fields present as null. Throws Error naming the path of the first value that does not fit the model.
 */
export function normalizeRetailDb(raw: unknown): RetailDb {
  const db = obj(raw, 'db');
  return {
    products: mapOf(db.products, 'products', normalizeProduct),
    users: mapOf(db.users, 'users', normalizeUser),
    orders: mapOf(db.orders, 'orders', normalizeOrder),
  };
}
