// The fixed word lists the local domain draws every value from: each value is one whole word, so a
// word-level tokenizer gives it one token and a small model can copy it from the user into a tool call.

/** First names (capitalized, as customers say them and as the DB stores them). */
export const NAMES = [
  'Mary', 'John', 'Anna', 'Peter', 'Laura', 'David', 'Sofia', 'Lucas', 'Emma', 'Noah',
  'Olivia', 'Liam', 'Mia', 'Ethan', 'Chloe', 'Jacob', 'Grace', 'Henry', 'Ella', 'Oscar',
  'Alice', 'Leo', 'Ruby', 'Max', 'Zoe', 'Adam', 'Lily', 'Owen', 'Nora', 'Ivan',
  'Clara', 'Hugo', 'Ada', 'Felix', 'Rosa', 'Omar', 'Iris', 'Paul', 'Vera', 'Sam',
  'Tara', 'Ben', 'Nina', 'Carl', 'Lena', 'Dan', 'Maya', 'Eric', 'Jade', 'Ian',
  'Kate', 'Tom', 'Amy', 'Finn', 'Eva', 'Luke', 'Sara', 'Mark', 'Ines', 'Ravi',
] as const;

/** Five-digit zip codes. */
export const ZIPS = [
  '10001', '10452', '11215', '12203', '13790', '14620', '15213', '16801', '17402', '18015',
  '19104', '20005', '21230', '22314', '23220', '24016', '25301', '26505', '27601', '28202',
  '29401', '30303', '31401', '32801', '33139', '34102', '35203', '36104', '37203', '38103',
  '39201', '40202', '41011', '42101', '43215', '44113', '45202', '46204', '47401', '48226',
] as const;

/** Cities the store delivers to. */
export const CITIES = [
  'Paris', 'Rome', 'Berlin', 'Madrid', 'Lisbon', 'Vienna', 'Prague', 'Dublin', 'Oslo', 'Athens',
  'Warsaw', 'Zurich', 'Munich', 'Milan', 'Lyon', 'Porto', 'Seville', 'Naples', 'Krakow', 'Bergen',
  'Geneva', 'Bruges', 'Tallinn', 'Riga',
] as const;

/** What customers order. */
export const ITEMS = [
  'lamp', 'chair', 'desk', 'kettle', 'blender', 'toaster', 'mirror', 'rug', 'sofa', 'clock',
  'vase', 'pillow', 'blanket', 'shelf', 'stool', 'fan', 'heater', 'speaker', 'camera', 'monitor',
] as const;

/** Order states; only `pending` orders may be cancelled or sent to another city. */
export const STATUSES = ['pending', 'shipped', 'delivered', 'cancelled'] as const;
export type OrderStatus = (typeof STATUSES)[number];

/** Accepted cancellation reasons (the `reason` argument of cancel_order). */
export const REASONS = ['mistake', 'duplicate', 'delay', 'price'] as const;

/** Order ids are unique within a customer and drawn from this small pool (`ord10` … `ord59`). */
export const ORDER_IDS = Array.from({ length: 50 }, (_, i) => `ord${i + 10}`);

/** Customer ids are unique and drawn from `cus100` … `cus999`. */
export const CUSTOMER_ID_RANGE = { min: 100, max: 999 } as const;
