// Everything the local domain says in English: the policy, the user's openings and answers, and the
// expert's questions and confirmations. Kept in one place so the word-level vocabulary covers it all.

/** The agent policy (policy.md): a few lines, the model is small and its context short. */
export const LOCAL_POLICY = [
  'You help customers of a small store with their orders.',
  '- First find the customer with find_customer, using their name and zip code.',
  '- To act on an order you need its order id; to cancel it, the reason; to send it elsewhere, the new city.',
  '- If the user has not told you something a tool needs, ask for it. Never guess.',
  '- Only pending orders can be cancelled or sent to another city.',
  '- When done, tell the user the result. Transfer to a human agent only if you cannot help.',
  '',
].join('\n');

/** The information a user's first message may leave out. */
export type MissingInfo = 'zip' | 'order_id' | 'city' | 'reason';
export type Intent = 'cancel' | 'change' | 'status';

/** Fills `{key}` placeholders. Throws when a placeholder has no value (a bug in a phrase table). */
export function fill(template: string, values: Record<string, string>): string {
  return template.replace(/\{(\w+)\}/g, (_, k: string) => {
    const v = values[k];
    if (v === undefined) throw new Error(`phrase '${template}' needs a value for {${k}}`);
    return v;
  });
}

export const GREETINGS = ['Hi, I am {name}.', 'Hello, my name is {name}.'];
export const ZIP_SENTENCE = 'My zip code is {zip}.';
export const REASON_SENTENCE = 'The reason is {reason}.';

/** The request sentence per intent: with everything, without the order id, without the new city. */
export const REQUESTS: Record<Intent, { full: string[]; noOrder: string[]; noCity?: string[] }> = {
  cancel: {
    full: ['Please cancel order {order}.', 'I want to cancel order {order}.'],
    noOrder: ['Please cancel one of my orders.', 'I want to cancel an order.'],
  },
  change: {
    full: ['Please send order {order} to {city} instead.', 'I want order {order} delivered to {city}.'],
    noOrder: ['Please send one of my orders to {city} instead.', 'I want an order delivered to {city}.'],
    noCity: ['Please send order {order} to another city.', 'I want order {order} delivered to a new city.'],
  },
  status: {
    full: ['What is the status of order {order}?', 'Can you check order {order} for me?'],
    noOrder: ['What is the status of my order?', 'Can you check my order for me?'],
  },
};

/** The scripted user's facts: how the agent asks for them and how the user answers. */
export const FACTS: Record<'name' | 'zip code' | 'order id' | 'city' | 'reason', { keywords: string[]; phrase: string }> = {
  name: { keywords: ['name', 'first name'], phrase: 'My name is {value}' },
  'zip code': { keywords: ['zip', 'zip code', 'zipcode', 'postal code'], phrase: 'My zip code is {value}' },
  'order id': { keywords: ['order id', 'order number', 'which order'], phrase: 'The order id is {value}' },
  city: { keywords: ['city', 'which city', 'where'], phrase: 'The new city is {value}' },
  reason: { keywords: ['reason', 'why'], phrase: 'The reason is {value}' },
};

/** Agent phrases that tell the scripted user its goal is done. */
export const GOAL_PHRASES: Record<Intent, string[]> = {
  cancel: ['has been cancelled'],
  change: ['will now be delivered to'],
  status: ['status of your order'],
};

/** The expert's question for each missing piece (each names the fact's keyword). */
export const ASK: Record<MissingInfo, string> = {
  zip: 'What is your zip code?',
  order_id: 'What is the order id?',
  city: 'Which city should the order go to?',
  reason: 'What is the reason for the cancellation?',
};

/** The expert's report when the work is done. */
export const DONE: Record<Intent, string> = {
  cancel: 'Your order {order} has been cancelled.',
  change: 'Your order {order} will now be delivered to {city}.',
  status: 'The status of your order {order} is {status}.',
};

export const ANYTHING_ELSE = 'Is there anything else I can help you with?';
export const TRANSFER_SUMMARY = 'The request could not be completed.';
