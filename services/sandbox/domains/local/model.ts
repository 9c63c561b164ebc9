// The local domain's database: customers keyed by id, each holding its orders keyed by an order id that
// is unique within the customer, plus the cities the store delivers to.

export interface LocalOrder {
  order_id: string;
  item: string;
  city: string;
  status: string;
  /** Set when the order is cancelled; null otherwise. */
  cancel_reason: string | null;
}

export interface LocalCustomer {
  customer_id: string;
  name: string;
  zip: string;
  orders: Record<string, LocalOrder>;
}

export interface LocalDb {
  customers: Record<string, LocalCustomer>;
  cities: string[];
}

function fail(path: string, what: string): never {
  throw new Error(`local domain: db.json ${path}: ${what}`);
}

function str(v: unknown, path: string): string {
  if (typeof v !== 'string' || v === '') fail(path, 'expected a non-empty string');
  return v;
}

/**
 * Checks a parsed db.json and returns it in model field order (so hashes do not depend on how the file
 * was written). Throws naming the path of the first bad field.
 */
export function normalizeLocalDb(raw: unknown): LocalDb {
  if (!raw || typeof raw !== 'object') fail('', 'expected an object with customers and cities');
  const r = raw as Record<string, unknown>;
  if (!r.customers || typeof r.customers !== 'object') fail('customers', 'expected an object keyed by customer id');
  if (!Array.isArray(r.cities)) fail('cities', 'expected a list of city names');
  const customers: Record<string, LocalCustomer> = {};
  for (const [id, c] of Object.entries(r.customers as Record<string, any>)) {
    const at = `customers.${id}`;
    if (!c || typeof c !== 'object') fail(at, 'expected an object');
    const orders: Record<string, LocalOrder> = {};
    if (!c.orders || typeof c.orders !== 'object') fail(`${at}.orders`, 'expected an object keyed by order id');
    for (const [oid, o] of Object.entries(c.orders as Record<string, any>)) {
      const oat = `${at}.orders.${oid}`;
      if (!o || typeof o !== 'object') fail(oat, 'expected an object');
      orders[oid] = {
        order_id: str(o.order_id, `${oat}.order_id`),
        item: str(o.item, `${oat}.item`),
        city: str(o.city, `${oat}.city`),
        status: str(o.status, `${oat}.status`),
        cancel_reason: o.cancel_reason === null || o.cancel_reason === undefined ? null : str(o.cancel_reason, `${oat}.cancel_reason`),
      };
    }
    customers[id] = { customer_id: str(c.customer_id, `${at}.customer_id`), name: str(c.name, `${at}.name`), zip: str(c.zip, `${at}.zip`), orders };
  }
  return { customers, cities: (r.cities as unknown[]).map((x, i) => str(x, `cities[${i}]`)) };
}
