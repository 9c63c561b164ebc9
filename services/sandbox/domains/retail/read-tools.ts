// The retail READ tools (TOOLS.md §3.2): user lookup by email or by name and zip, and the details of
// users, orders, products and items. None of them changes state.

import type { JsonSchemaObject } from '../../domain.js';
import { ToolError } from '../../domain.js';
import { pyDumps } from '../../pyjson.js';
import type { RetailTool } from './db-access.js';
import { getItem, getOrder, getProduct, getUser, lower } from './db-access.js';

const ORDER_ID = { type: 'string', description: "The order id, with its leading '#', e.g. '#W0000000'." };
const USER_ID = { type: 'string', description: "The user id, e.g. 'sara_doe_496'." };

/** An arguments schema where every listed property is required. */
export function schema(properties: Record<string, object>): JsonSchemaObject {
  return { type: 'object', properties, required: Object.keys(properties) };
}

export const findUserIdByEmail: RetailTool = {
  name: 'find_user_id_by_email',
  description: 'Look up a user id by email address (case-insensitive). Fails when no user has that email.',
  parameters: schema({ email: { type: 'string', description: "The user's email, e.g. 'name@example.com'." } }),
  type: 'READ',
  run(state, args) {
    for (const [userId, user] of Object.entries(state.db.root.users)) {
      if (lower(user.email) === lower(args.email)) return userId;
    }
    throw new ToolError('User not found');
  },
};

export const findUserIdByNameZip: RetailTool = {
  name: 'find_user_id_by_name_zip',
  description:
    'Look up a user id by first name, last name (both case-insensitive) and zip code (exact). ' +
    'Prefer the email lookup; use this when the user cannot give an email.',
  parameters: schema({
    first_name: { type: 'string', description: "The user's first name, e.g. 'John'." },
    last_name: { type: 'string', description: "The user's last name, e.g. 'Doe'." },
    zip: { type: 'string', description: "The user's zip code, e.g. '12345'." },
  }),
  type: 'READ',
  run(state, args) {
    for (const [userId, user] of Object.entries(state.db.root.users)) {
      // Same evaluation order and short-circuiting as the reference's condition.
      if (
        lower(user.name.first_name) === lower(args.first_name) &&
        lower(user.name.last_name) === lower(args.last_name) &&
        user.address.zip === args.zip
      ) {
        return userId;
      }
    }
    throw new ToolError('User not found');
  },
};

export const getOrderDetails: RetailTool = {
  name: 'get_order_details',
  description: 'Get the status, items, fulfillments and payments of an order.',
  parameters: schema({ order_id: ORDER_ID }),
  type: 'READ',
  run: (state, args) => getOrder(state, args.order_id),
};

export const getProductDetails: RetailTool = {
  name: 'get_product_details',
  description: 'Get a product type and all its items (variants) with their options, availability and prices.',
  parameters: schema({
    product_id: { type: 'string', description: "The product id, e.g. '6086499569' (not an item id)." },
  }),
  type: 'READ',
  run: (state, args) => getProduct(state, args.product_id),
};

export const getItemDetails: RetailTool = {
  name: 'get_item_details',
  description: 'Get one item (a product variant): its options, availability and price.',
  parameters: schema({
    item_id: { type: 'string', description: "The item id, e.g. '6086499569' (not a product id)." },
  }),
  type: 'READ',
  run: (state, args) => getItem(state, args.item_id),
};

export const getUserDetails: RetailTool = {
  name: 'get_user_details',
  description: "Get a user's profile: name, address, email, payment methods and order ids.",
  parameters: schema({ user_id: USER_ID }),
  type: 'READ',
  run: (state, args) => getUser(state, args.user_id),
};

export const listAllProductTypes: RetailTool = {
  name: 'list_all_product_types',
  description: 'List every product type (50 in the store) as a JSON object mapping product name to product id.',
  parameters: schema({}),
  type: 'READ',
  run(state) {
    const byName = new Map<string, string>();
    for (const product of Object.values(state.db.root.products)) byName.set(product.name, product.product_id);
    return pyDumps(byName, { sortKeys: true });
  },
};

export { ORDER_ID, USER_ID };
