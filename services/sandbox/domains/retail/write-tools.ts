// The retail WRITE tools (TOOLS.md §3.2): cancel, address and payment changes, item modification,
// exchange and return. Checks come first; the ⚠ partial mutations of the reference are kept on purpose.

import { ToolError } from '../../domain.js';
import { PyInt, pyStr } from '../../pyjson.js';
import { pyRound } from '../common/pyround.js';
import type { RetailState, RetailTool } from './db-access.js';
import {
  count,
  getOrder,
  getPaymentMethod,
  getUser,
  getVariant,
  isPendingish,
  list,
  makeAddress,
} from './db-access.js';
import type { Order, OrderItem, OrderPayment, User, Variant } from './model.js';
import { CANCEL_REASONS } from './model.js';
import { ORDER_ID, USER_ID, schema } from './read-tools.js';

const ITEM_IDS = { type: 'array', items: { type: 'string' }, description: "Item ids, e.g. ['1008292230']; repeats allowed." };
const PAYMENT_METHOD_ID = {
  type: 'string',
  description: "A payment method id of the order's user, e.g. 'gift_card_0000000' or 'credit_card_0000000'.",
};
const ADDRESS = {
  address1: { type: 'string', description: "First address line, e.g. '123 Main St'." },
  address2: { type: 'string', description: "Second address line, e.g. 'Apt 1', or ''." },
  city: { type: 'string', description: "City, e.g. 'San Francisco'." },
  state: { type: 'string', description: "State, e.g. 'CA'." },
  country: { type: 'string', description: "Country, e.g. 'USA'." },
  zip: { type: 'string', description: "Zip code, e.g. '12345'." },
};

/** Sets a gift card's balance to round(balance + delta, 2) in this session's copy. */
function creditGiftCard(state: RetailState, userId: string, paymentMethodId: string, delta: number): void {
  const card = state.db.edit<{ balance: number }>('users', userId, 'payment_methods', paymentMethodId);
  card.balance = pyRound(card.balance + delta, 2);
}

/** Python `a.count(x) > b.count(x)` over every x of `ids`; throws `message(x)` for the first such x. */
function checkCounts(ids: unknown[], order: Order, message: (id: unknown) => string): void {
  const all = order.items.map((item) => item.item_id);
  for (const id of ids) if (count(ids, id) > count(all, id)) throw new ToolError(message(id));
}

/** Python `sorted()` of the string ids these tools store (UTF-16 order equals code-point order here). */
const sorted = (ids: unknown[]): string[] => [...(ids as string[])].sort();

export const cancelPendingOrder: RetailTool = {
  name: 'cancel_pending_order',
  description:
    "Cancel a pending order and refund its payments (gift cards are credited at once). Reason: 'no longer needed' " +
    "or 'ordered by mistake'. Confirm the details with the user first. Returns the updated order.",
  parameters: schema({
    order_id: ORDER_ID,
    // No enum: tau2 passes the argument as-is and the tool answers `Invalid reason`.
    reason: { type: 'string', description: "Why: 'no longer needed' or 'ordered by mistake'." },
  }),
  type: 'WRITE',
  run(state, args) {
    const orderId = args.order_id;
    const order = getOrder(state, orderId);
    if (order.status !== 'pending') throw new ToolError('Non-pending order cannot be cancelled');
    if (!CANCEL_REASONS.includes(args.reason as (typeof CANCEL_REASONS)[number])) throw new ToolError('Invalid reason');
    const refunds: OrderPayment[] = [];
    for (const payment of order.payment_history) {
      refunds.push({ transaction_type: 'refund', amount: payment.amount, payment_method_id: payment.payment_method_id });
      const user = getUser(state, order.user_id);
      // ⚠ a missing payment method throws here, after earlier gift cards were already credited.
      const method = getPaymentMethod(state, user.user_id, payment.payment_method_id);
      if (method.source === 'gift_card') creditGiftCard(state, user.user_id, method.id, payment.amount);
    }
    const edited = state.db.edit<Order>('orders', orderId as string);
    edited.status = 'cancelled';
    edited.cancel_reason = args.reason as string;
    state.db.edit<OrderPayment[]>('orders', orderId as string, 'payment_history').push(...refunds);
    return edited;
  },
};

export const exchangeDeliveredOrderItems: RetailTool = {
  name: 'exchange_delivered_order_items',
  description:
    'Request an exchange of delivered items for other items of the same product (one exchange or return per ' +
    'order). The price difference is settled with the given payment method. Confirm with the user first.',
  parameters: schema({
    order_id: ORDER_ID,
    item_ids: ITEM_IDS,
    new_item_ids: { ...ITEM_IDS, description: 'The replacement item ids, position by position, same products.' },
    payment_method_id: PAYMENT_METHOD_ID,
  }),
  type: 'WRITE',
  run(state, args) {
    const orderId = args.order_id;
    const order = getOrder(state, orderId);
    if (order.status !== 'delivered') throw new ToolError('Non-delivered order cannot be exchanged');
    const itemIds = list(args.item_ids);
    checkCounts(itemIds, order, (id) => `Number of ${pyStr(id)} not found.`);
    const newItemIds = list(args.new_item_ids);
    if (itemIds.length !== newItemIds.length) throw new ToolError('The number of items to be exchanged should match.');
    // Python's `diff = 0` stays an int when there is nothing to exchange.
    let diff = 0;
    for (let i = 0; i < itemIds.length; i++) {
      const item = order.items.find((it) => it.item_id === itemIds[i]);
      if (!item) throw new ToolError(`Item ${pyStr(itemIds[i])} not found`);
      const variant = getVariant(state, item.product_id, newItemIds[i]);
      if (!variant.available) throw new ToolError(`New item ${pyStr(newItemIds[i])} not found or available`);
      diff += variant.price - item.price;
    }
    diff = pyRound(diff, 2);
    const method = getPaymentMethod(state, order.user_id, args.payment_method_id);
    if (method.source === 'gift_card' && method.balance < diff) {
      throw new ToolError('Insufficient gift card balance to pay for the price difference');
    }
    const edited = state.db.edit<Order>('orders', orderId as string);
    edited.status = 'exchange requested';
    edited.exchange_items = sorted(itemIds);
    edited.exchange_new_items = sorted(newItemIds);
    edited.exchange_payment_method_id = args.payment_method_id as string;
    edited.exchange_price_difference = itemIds.length === 0 ? new PyInt(0) : diff;
    return edited;
  },
};

export const modifyPendingOrderAddress: RetailTool = {
  name: 'modify_pending_order_address',
  description: 'Change the shipping address of a pending order. Confirm with the user first. Returns the updated order.',
  parameters: schema({ order_id: ORDER_ID, ...ADDRESS }),
  type: 'WRITE',
  run(state, args) {
    const order = getOrder(state, args.order_id);
    if (!isPendingish(order)) throw new ToolError('Non-pending order cannot be modified');
    const address = makeAddress(args);
    const edited = state.db.edit<Order>('orders', order.order_id);
    edited.address = address;
    return edited;
  },
};

export const modifyPendingOrderItems: RetailTool = {
  name: 'modify_pending_order_items',
  description:
    'Swap items of a pending order for other items of the same product (only once per order). The price ' +
    'difference is paid or refunded with the given payment method. Confirm with the user first.',
  parameters: schema({
    order_id: ORDER_ID,
    item_ids: ITEM_IDS,
    new_item_ids: { ...ITEM_IDS, description: 'The replacement item ids, position by position, same products.' },
    payment_method_id: PAYMENT_METHOD_ID,
  }),
  type: 'WRITE',
  run(state, args) {
    const orderId = args.order_id;
    const order = getOrder(state, orderId);
    if (order.status !== 'pending') throw new ToolError('Non-pending order cannot be modified');
    const itemIds = list(args.item_ids);
    checkCounts(itemIds, order, (id) => `${pyStr(id)} not found`);
    const newItemIds = list(args.new_item_ids);
    if (itemIds.length !== newItemIds.length) throw new ToolError('The number of items to be exchanged should match');
    let diff = 0;
    let variant: Variant | undefined;
    for (let i = 0; i < itemIds.length; i++) {
      if (itemIds[i] === newItemIds[i]) throw new ToolError('The new item id should be different from the old item id');
      const item = order.items.find((it) => it.item_id === itemIds[i]);
      if (!item) throw new ToolError(`Item ${pyStr(itemIds[i])} not found`);
      variant = getVariant(state, item.product_id, newItemIds[i]);
      if (!variant.available) throw new ToolError(`New item ${pyStr(newItemIds[i])} not found or available`);
      diff += variant.price - item.price;
    }
    const method = getPaymentMethod(state, order.user_id, args.payment_method_id);
    if (method.source === 'gift_card' && method.balance < diff) {
      throw new ToolError('Insufficient gift card balance to pay for the new item');
    }
    // The amount is not rounded (e.g. 8.739999999999995); OrderPayment makes it a float (0.0 when no items).
    state.db.edit<OrderPayment[]>('orders', orderId as string, 'payment_history').push({
      transaction_type: diff > 0 ? 'payment' : 'refund',
      amount: Math.abs(diff),
      payment_method_id: args.payment_method_id as string,
    });
    if (method.source === 'gift_card') creditGiftCard(state, order.user_id, method.id, -diff);
    const items = state.db.edit<OrderItem[]>('orders', orderId as string, 'items');
    for (let i = 0; i < itemIds.length; i++) {
      const at = items.findIndex((it) => it.item_id === itemIds[i]);
      if (at < 0) throw new ToolError(`Item ${pyStr(itemIds[i])} not found`);
      const item = state.db.edit<OrderItem>('orders', orderId as string, 'items', at);
      item.item_id = newItemIds[i] as string;
      // ⚠ Reference quirk kept for hash parity: price and options come from the LAST pair's variant.
      item.price = variant!.price;
      item.options = { ...variant!.options };
    }
    const edited = state.db.edit<Order>('orders', orderId as string);
    edited.status = 'pending (item modified)';
    return edited;
  },
};

export const modifyPendingOrderPayment: RetailTool = {
  name: 'modify_pending_order_payment',
  description:
    "Pay a pending order with another of the user's payment methods; the old one is refunded. Confirm with " +
    'the user first. Returns the updated order.',
  parameters: schema({ order_id: ORDER_ID, payment_method_id: PAYMENT_METHOD_ID }),
  type: 'WRITE',
  run(state, args) {
    const order = getOrder(state, args.order_id);
    if (!isPendingish(order)) throw new ToolError('Non-pending order cannot be modified');
    const method = getPaymentMethod(state, order.user_id, args.payment_method_id);
    const history = order.payment_history;
    if (history.length !== 1 || history[0]!.transaction_type !== 'payment') {
      throw new ToolError('There should be exactly one payment for a pending order');
    }
    const oldId = history[0]!.payment_method_id;
    if (oldId === args.payment_method_id) {
      throw new ToolError('The new payment method should be different from the current one');
    }
    const amount = history[0]!.amount;
    if (method.source === 'gift_card' && method.balance < amount) {
      throw new ToolError('Insufficient gift card balance to pay for the order');
    }
    state.db
      .edit<OrderPayment[]>('orders', order.order_id, 'payment_history')
      .push(
        { transaction_type: 'payment', amount, payment_method_id: args.payment_method_id as string },
        { transaction_type: 'refund', amount, payment_method_id: oldId },
      );
    if (method.source === 'gift_card') creditGiftCard(state, order.user_id, method.id, -amount);
    // ⚠ a missing old method throws here, after the history and the new gift card were changed.
    const old = getPaymentMethod(state, order.user_id, oldId);
    if (old.source === 'gift_card') creditGiftCard(state, order.user_id, old.id, amount);
    return state.db.root.orders[order.order_id]!;
  },
};

export const modifyUserAddress: RetailTool = {
  name: 'modify_user_address',
  description: "Change a user's default address (orders keep theirs). Confirm with the user first. Returns the user.",
  parameters: schema({ user_id: USER_ID, ...ADDRESS }),
  type: 'WRITE',
  run(state, args) {
    const user = getUser(state, args.user_id);
    const address = makeAddress(args);
    const edited = state.db.edit<User>('users', user.user_id);
    edited.address = address;
    return edited;
  },
};

export const returnDeliveredOrderItems: RetailTool = {
  name: 'return_delivered_order_items',
  description:
    'Request a return of delivered items (one exchange or return per order). The refund goes to the original ' +
    'payment method or a gift card. Confirm with the user first. Returns the updated order.',
  parameters: schema({ order_id: ORDER_ID, item_ids: ITEM_IDS, payment_method_id: PAYMENT_METHOD_ID }),
  type: 'WRITE',
  run(state, args) {
    const order = getOrder(state, args.order_id);
    if (order.status !== 'delivered') throw new ToolError('Non-delivered order cannot be returned');
    const user = getUser(state, order.user_id);
    const method = getPaymentMethod(state, user.user_id, args.payment_method_id);
    if (method.source !== 'gift_card') {
      const first = order.payment_history[0];
      if (!first) throw new ToolError('list index out of range');
      if (args.payment_method_id !== first.payment_method_id) {
        throw new ToolError('Payment method should be the original payment method');
      }
    }
    const itemIds = list(args.item_ids);
    checkCounts(itemIds, order, () => 'Some item not found');
    const edited = state.db.edit<Order>('orders', order.order_id);
    edited.status = 'return requested';
    edited.return_items = sorted(itemIds);
    edited.return_payment_method_id = args.payment_method_id as string;
    return edited;
  },
};
