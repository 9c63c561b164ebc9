// Lookups shared by the retail tools (TOOLS.md §3.1 helpers) with the reference's error texts, and the
// Python semantics they rely on; reads go through `db.root`, writes through `db.edit`.

import type { DomainState, ToolDef } from '../../domain.js';
import { ToolError } from '../../domain.js';
import { PyFloat, PyInt, pyStr } from '../../pyjson.js';
import type { Address, Order, PaymentMethod, Product, RetailDb, User, Variant } from './model.js';

export type RetailState = DomainState<RetailDb>;
export type RetailTool = ToolDef<RetailDb>;

/** Python `key in dict` for a dict with string keys (other key types are never present). */
export function has(map: object, key: unknown): key is string {
  return typeof key === 'string' && Object.hasOwn(map, key);
}

/** Python's type name of a JSON-decoded argument, as its error messages show it. */
export function pyTypeName(v: unknown): string {
  if (v === null || v === undefined) return 'NoneType';
  if (v instanceof PyFloat) return 'float';
  if (v instanceof PyInt) return 'int';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float';
  if (typeof v === 'string') return 'str';
  if (typeof v === 'boolean') return 'bool';
  return Array.isArray(v) ? 'list' : 'dict';
}

/** Python `s.lower()`; a non-string argument fails as Python's attribute lookup does. */
export function lower(v: unknown): string {
  if (typeof v !== 'string') throw new ToolError(`'${pyTypeName(v)}' object has no attribute 'lower'`);
  return v.toLowerCase();
}

/** A list argument; anything else fails as the reference's `.count()` call would. */
export function list(v: unknown): unknown[] {
  if (!Array.isArray(v)) throw new ToolError(`'${pyTypeName(v)}' object has no attribute 'count'`);
  return v;
}

/** Python `xs.count(x)` for the strings and scalars tool arguments hold. */
export function count(xs: readonly unknown[], x: unknown): number {
  let n = 0;
  for (const y of xs) if (y === x) n++;
  return n;
}

/** Throws `Order not found`. The id includes the leading '#'. */
export function getOrder(state: RetailState, orderId: unknown): Order {
  const orders = state.db.root.orders;
  if (!has(orders, orderId)) throw new ToolError('Order not found');
  return orders[orderId]!;
}

/** Throws `User not found`. */
export function getUser(state: RetailState, userId: unknown): User {
  const users = state.db.root.users;
  if (!has(users, userId)) throw new ToolError('User not found');
  return users[userId]!;
}

/** Throws `Product not found`. */
export function getProduct(state: RetailState, productId: unknown): Product {
  const products = state.db.root.products;
  if (!has(products, productId)) throw new ToolError('Product not found');
  return products[productId]!;
}

/** Throws `Product not found`, then `Variant not found`. */
export function getVariant(state: RetailState, productId: unknown, variantId: unknown): Variant {
  const product = getProduct(state, productId);
  const variant = typeof variantId === 'string' ? product.variants.get(variantId) : undefined;
  if (!variant) throw new ToolError('Variant not found');
  return variant;
}

/** The variant with this item id in any product (DB order); throws `Item not found`. */
export function getItem(state: RetailState, itemId: unknown): Variant {
  if (typeof itemId === 'string') {
    for (const product of Object.values(state.db.root.products)) {
      const variant = product.variants.get(itemId);
      if (variant) return variant;
    }
  }
  throw new ToolError('Item not found');
}

/** Throws `User not found`, then `Payment method not found`. */
export function getPaymentMethod(state: RetailState, userId: unknown, paymentMethodId: unknown): PaymentMethod {
  const user = getUser(state, userId);
  if (!has(user.payment_methods, paymentMethodId)) throw new ToolError('Payment method not found');
  return user.payment_methods[paymentMethodId]!;
}

/** "Pending-ish": the status contains `pending` (so `pending (item modified)` qualifies). */
export function isPendingish(order: Order): boolean {
  return order.status.includes('pending');
}

const ADDRESS_FIELDS = ['address1', 'address2', 'city', 'country', 'state', 'zip'] as const;

/**
 * Builds a UserAddress as pydantic validates it: every field must be a string. Throws ToolError with a
 * pydantic-style message naming each bad field (the reference's exact text is not reproduced byte for byte).
 */
export function makeAddress(args: Record<string, unknown>): Address {
  const bad = ADDRESS_FIELDS.filter((f) => typeof args[f] !== 'string');
  if (bad.length > 0) {
    const lines = bad.map((f) => {
      const v = args[f];
      if (v === undefined) return `${f}\n  Field required [type=missing, input_value={}, input_type=dict]`;
      return `${f}\n  Input should be a valid string [type=string_type, input_value=${pyStr(v)}, input_type=${pyTypeName(v)}]`;
    });
    const n = bad.length;
    throw new ToolError(`${n} validation error${n > 1 ? 's' : ''} for UserAddress\n${lines.join('\n')}`);
  }
  const a = args as Record<(typeof ADDRESS_FIELDS)[number], string>;
  return { address1: a.address1, address2: a.address2, city: a.city, country: a.country, state: a.state, zip: a.zip };
}
