// The local domain's tools: find a customer by name and zip, read an order, cancel it, send it to another
// city, or hand over to a human. Order tools need the customer id that find_customer returns.

import type { DomainState, ToolDef } from '../../domain.js';
import { ToolError } from '../../domain.js';
import type { LocalCustomer, LocalDb, LocalOrder } from './model.js';
import { REASONS } from './words.js';

type LocalState = DomainState<LocalDb>;

const CUSTOMER_ID = { type: 'string', description: 'The customer id, as returned by find_customer, such as cus417.' };
const ORDER_ID = { type: 'string', description: "The order id, such as ord17 (unique within the customer's orders)." };

function customerOf(state: LocalState, id: string): LocalCustomer {
  const c = state.db.root.customers[id];
  if (!c) throw new ToolError(`Customer ${id} not found`);
  return c;
}

function orderOf(state: LocalState, customerId: string, orderId: string): LocalOrder {
  const o = customerOf(state, customerId).orders[orderId];
  if (!o) throw new ToolError(`Order ${orderId} not found for customer ${customerId}`);
  return o;
}

function requirePending(order: LocalOrder, what: string): void {
  if (order.status !== 'pending') throw new ToolError(`Order ${order.order_id} is ${order.status}; only pending orders can be ${what}`);
}

/** The tools, in the order they are offered to the agent. */
export const LOCAL_TOOLS: ToolDef<LocalDb>[] = [
  {
    name: 'find_customer',
    description: "Find a customer by first name and zip code. Returns the customer's id, name, zip and order ids.",
    type: 'READ',
    parameters: {
      type: 'object',
      properties: {
        name: { type: 'string', description: "The customer's first name, such as Mary." },
        zip: { type: 'string', description: "The customer's five-digit zip code, such as 10001." },
      },
      required: ['name', 'zip'],
    },
    run(state, args) {
      const name = String(args.name).toLowerCase();
      const zip = String(args.zip);
      const c = Object.values(state.db.root.customers).find((x) => x.name.toLowerCase() === name && x.zip === zip);
      if (!c) throw new ToolError('Customer not found');
      return { customer_id: c.customer_id, name: c.name, zip: c.zip, orders: Object.keys(c.orders) };
    },
  },
  {
    name: 'get_order',
    description: "Get one of the customer's orders: item, delivery city and status.",
    type: 'READ',
    parameters: {
      type: 'object',
      properties: { customer_id: CUSTOMER_ID, order_id: ORDER_ID },
      required: ['customer_id', 'order_id'],
    },
    run(state, args) {
      return orderOf(state, String(args.customer_id), String(args.order_id));
    },
  },
  {
    name: 'cancel_order',
    description: 'Cancel a pending order, with the reason the customer gives. Returns the updated order.',
    type: 'WRITE',
    parameters: {
      type: 'object',
      properties: {
        customer_id: CUSTOMER_ID,
        order_id: ORDER_ID,
        reason: { type: 'string', enum: [...REASONS], description: `Why the customer cancels: ${REASONS.join(', ')}.` },
      },
      required: ['customer_id', 'order_id', 'reason'],
    },
    run(state, args) {
      const customerId = String(args.customer_id);
      const orderId = String(args.order_id);
      requirePending(orderOf(state, customerId, orderId), 'cancelled');
      const order = state.db.edit<LocalOrder>('customers', customerId, 'orders', orderId);
      order.status = 'cancelled';
      order.cancel_reason = String(args.reason);
      return order;
    },
  },
  {
    name: 'change_address',
    description: 'Send a pending order to another city the store delivers to. Returns the updated order.',
    type: 'WRITE',
    parameters: {
      type: 'object',
      properties: {
        customer_id: CUSTOMER_ID,
        order_id: ORDER_ID,
        city: { type: 'string', description: 'The new delivery city, such as Paris.' },
      },
      required: ['customer_id', 'order_id', 'city'],
    },
    run(state, args) {
      const customerId = String(args.customer_id);
      const orderId = String(args.order_id);
      const city = String(args.city);
      requirePending(orderOf(state, customerId, orderId), 'changed');
      if (!state.db.root.cities.includes(city)) throw new ToolError(`We do not deliver to ${city}`);
      const order = state.db.edit<LocalOrder>('customers', customerId, 'orders', orderId);
      order.city = city;
      return order;
    },
  },
  {
    name: 'transfer_to_human_agents',
    description:
      "Transfer the user to a human agent, with a summary of the user's issue. Only transfer if the issue cannot be solved with the policy and the available tools.",
    type: 'GENERIC',
    terminal: true,
    parameters: {
      type: 'object',
      properties: { summary: { type: 'string', description: "A summary of the user's issue." } },
      required: ['summary'],
    },
    run() {
      return 'Transfer successful';
    },
  },
];
