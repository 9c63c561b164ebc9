// Pulls revealable facts (name, user id, zip, email, order id, reservation, address, payment, and any
// "your <label> is <value>") out of a τ² scenario's free text, and rewrites second person as first person.

/** A fact the scripted user can reveal when the agent asks for it. */
export interface Fact {
  /** Canonical name ("zip code", "user id", …) or the label found in the text. */
  key: string;
  /** Lower-case phrases that ask for it, matched as whole words in the agent's request. */
  keywords: string[];
  /** Alternatives, revealed one per request in order (the last one repeats); with `all`, revealed together. */
  values: string[];
  all: boolean;
  /** How the user says it; `{value}` is replaced. */
  phrase: string;
  /** How the user says several values at once (facts with `all`). */
  pluralPhrase?: string;
}

/** Something the scenario says the user does not know. */
export interface UnknownItem {
  key: string;
  keywords: string[];
}

interface Kind {
  keywords: string[];
  phrase: string;
  pluralPhrase?: string;
  all?: boolean;
  /** Labels in "your <label> is …" that mean this kind. */
  labels: string[];
}

/** The fact kinds τ² retail and airline scenarios use, with the words agents use to ask for them. */
export const FACT_KINDS: Record<string, Kind> = {
  name: {
    keywords: ['name', 'full name', 'first name', 'last name', 'who am i speaking', 'who i am speaking'],
    phrase: 'My name is {value}',
    labels: ['name', 'full name'],
  },
  'user id': {
    keywords: ['user id', 'userid', 'user_id', 'account id', 'username', 'customer id', 'user identifier', 'which user'],
    phrase: 'My user id is {value}',
    labels: ['user id', 'userid', 'user_id', 'account id', 'username'],
  },
  'zip code': {
    keywords: ['zip', 'zipcode', 'zip code', 'postal code', 'postcode', 'post code'],
    phrase: 'My zip code is {value}',
    labels: ['zip', 'zip code', 'zipcode', 'postal code'],
  },
  email: {
    keywords: ['email', 'e-mail', 'email address', 'emails'],
    phrase: 'My email is {value}',
    labels: ['email', 'email address', 'emails', 'e-mail'],
  },
  'order id': {
    keywords: ['order id', 'order ids', 'order number', 'order numbers', 'order #', 'which order', 'which orders'],
    phrase: 'The order id is {value}',
    pluralPhrase: 'The order ids are {value}',
    all: true,
    labels: ['order id', 'order number'],
  },
  'reservation id': {
    keywords: ['reservation', 'reservation id', 'reservation number', 'confirmation number', 'confirmation code', 'booking reference', 'booking code', 'booking number', 'booking id'],
    phrase: 'The reservation number is {value}',
    pluralPhrase: 'The reservation numbers are {value}',
    all: true,
    labels: ['reservation', 'reservation id', 'reservation number', 'confirmation number', 'confirmation code', 'booking reference'],
  },
  address: {
    keywords: ['address', 'shipping address', 'street'],
    phrase: 'My address is {value}',
    labels: ['address', 'shipping address'],
  },
  'payment method': {
    keywords: ['payment method', 'payment', 'pay with', 'pay for', 'which card', 'refund to', 'refunded to'],
    phrase: "I'd like to use my {value}",
    labels: ['payment method'],
  },
};

const LABEL_TO_KIND = new Map<string, string>(Object.entries(FACT_KINDS).flatMap(([k, v]) => v.labels.map((l) => [l, k] as const)));

/** Lower-case, curly quotes and apostrophes dropped, whitespace collapsed: the form keywords are matched in. */
export function normalize(text: string): string {
  return text.toLowerCase().replace(/[’']/g, '').replace(/\s+/g, ' ').trim();
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Where `phrase` occurs in the normalized `text` as whole words: [start, end) spans. */
function phraseSpans(text: string, phrase: string): Array<[number, number]> {
  const p = normalize(phrase);
  const re = new RegExp(`(?<![a-z0-9_])${escapeRe(p)}(?![a-z0-9_])`, 'g');
  return [...text.matchAll(re)].map((m) => [m.index, m.index + p.length]);
}

/** True when `phrase` occurs in the normalized `text` as whole words. */
export function hasPhrase(text: string, phrase: string): boolean {
  return phraseSpans(text, phrase).length > 0;
}

/**
 * The items whose keywords occur in the normalized `text`, where a keyword found only inside a longer
 * keyword of another item does not count ("address" in "email address" means the email). Never throws.
 */
export function matchKeywords<T extends { keywords: string[] }>(text: string, items: readonly T[]): T[] {
  const hits = items.flatMap((item, i) => item.keywords.flatMap((k) => phraseSpans(text, k).map(([a, b]) => ({ i, a, b }))));
  const kept = hits.filter((h) => !hits.some((o) => o.i !== h.i && o.a <= h.a && o.b >= h.b && o.b - o.a > h.b - h.a));
  return [...new Set(kept.map((h) => h.i))].sort((x, y) => x - y).map((i) => items[i]!);
}

/** Splits text into sentences at blank lines, line breaks and sentence ends (rough: "e.g." splits too). */
export function splitSentences(text: string): string[] {
  return text
    .split(/\n+/)
    .flatMap((para) => para.split(/(?<=[.!?])\s+(?=["'(#A-Z0-9])/))
    .map((s) => s.trim().replace(/^[^\p{L}\p{N}#"'(]+/u, ''))
    .filter((s) => /[\p{L}\p{N}]/u.test(s));
}

const OBJECT_BEFORE = /\b(to|for|with|at|from|about|by|than|of|on|tell|told|give|gave|help|helps|ask|asked|let|send|sent|call|contact|show|remind|allow|allows|charge|refund|email|offer|offered|assure|assured|promise|promised)\s+$/i;

/** Rewrites a second-person instruction ("You want to cancel your order") in the first person ("I want to cancel my order"). Never throws. */
export function toFirstPerson(text: string): string {
  const cap = (match: string, s: string) => (match[0] === match[0]?.toUpperCase() ? s[0]!.toUpperCase() + s.slice(1) : s);
  let out = text
    .replace(/\byou(?:'|’)re\b/gi, (m) => cap(m, "I'm"))
    .replace(/\byou are\b/gi, (m) => cap(m, 'I am'))
    .replace(/\byou were\b/gi, (m) => cap(m, 'I was'))
    .replace(/\byou(?:'|’)(ve|d|ll)\b/gi, (m, v: string) => `I'${v.toLowerCase()}`)
    .replace(/\byourself\b/gi, (m) => cap(m, 'myself'))
    .replace(/\byours\b/gi, (m) => cap(m, 'mine'))
    .replace(/\byour\b/gi, (m) => cap(m, 'my'));
  out = out.replace(/\byou\b/gi, (_m, offset: number, whole: string) => (OBJECT_BEFORE.test(whole.slice(0, offset)) ? 'me' : 'I'));
  return out;
}

function cleanValue(v: string): string {
  return v
    .trim()
    .replace(/^[:\s]+/, '')
    .replace(/[.,;:]+$/, '')
    .replace(/^['"`](.*)['"`]$/, '$1')
    .trim();
}

class FactBag {
  private readonly facts = new Map<string, Fact>();

  add(key: string, value: string): void {
    const v = cleanValue(value);
    if (!v) return;
    let fact = this.facts.get(key);
    if (!fact) {
      const kind = FACT_KINDS[key];
      fact = {
        key,
        keywords: kind ? kind.keywords : [normalize(key)],
        values: [],
        all: kind?.all ?? false,
        phrase: kind ? kind.phrase : `My ${key} is {value}`,
        pluralPhrase: kind?.pluralPhrase,
      };
      this.facts.set(key, fact);
    }
    if (!fact.values.includes(v)) fact.values.push(v);
  }

  has(key: string): boolean {
    return this.facts.has(key);
  }

  list(): Fact[] {
    return [...this.facts.values()];
  }
}

const EMAIL = /[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/g;
const LABELLED = /\b(?:[Yy]our|[Yy]ou|[Tt]he)\s+(?!(?:are|were|have|had|do|did|can|will|would)\b)([a-z][a-zA-Z' _-]{0,40}?)\s+(?:is|are)\s*:?\s*(.+?)(?=,?\s+(?:and|but)\s+(?:your|you)\b|\s+(?:for|because|which|that|since|so|but)\s|[,;]\s*(?:your|you)\b|\.(?:\s|$)|\n|$)/g;
const LINE_LABEL = /^([A-Za-z][A-Za-z' ]{0,40}):[ \t]*(\S.*)$/gm;
const NAME = /\b(?:[Yy]ou are|[Yy]ou(?:'|’)re|[Cc]alled|[Nn]amed)\s+(?:an? [a-z ]+? (?:called|named)\s+)?([A-Z][a-z]+(?:\s+[A-Z][a-z]+)*)/;
// τ²-style user ids (first_last_1234) and mock's user_1; not task_1 or notif_1.
const USER_ID = /\b(?:user_[a-z0-9_]+|[a-z]+_[a-z]+_\d{3,})\b/g;
const ZIP_LABELLED = /\bzip\s*code\s*(?:is\s*)?:?\s*(\d{5})\b/gi;
const FIVE_DIGITS = /(?<![\w.@-])\d{5}(?![\w@-])/g;
const ORDER_ID = /#W\d+/g;
// Six upper-case letters/digits near "reservation", except flight numbers like HAT045.
const BOOKING_CODE = /\b(?![A-Z]{3}\d{3}\b)(?=[A-Z0-9]*[A-Z])[A-Z0-9]{6}\b/g;
const ADDRESS = /\b\d{1,6}\s+(?:[A-Z][A-Za-z]*\s+)+(?:Drive|Dr|Street|St|Avenue|Ave|Road|Rd|Lane|Ln|Boulevard|Blvd|Way|Court|Ct|Place|Pl|Terrace|Circle|Parkway)\b[^.\n]*/;
const PAYMENT = /\b(paypal|gift card|credit card(?: ending in \d{4})?|debit card|apple pay|original payment method)\b/i;

/**
 * Extracts facts from the user's known information (`known`) and from the rest of the scenario
 * (`context`: reason for call, task instructions), where only identifiers (order ids, reservation
 * codes, payment methods) are looked for. Deterministic; never throws; misses what it cannot parse.
 */
export function extractFacts(known: string, context = ''): Fact[] {
  const bag = new FactBag();
  for (const m of known.matchAll(LABELLED)) {
    const label = normalize(m[1]!);
    if (/\b(and|your|you)\b/.test(label)) continue;
    const key = LABEL_TO_KIND.get(label) ?? label;
    if (key === 'email') for (const e of m[2]!.match(EMAIL) ?? []) bag.add('email', e);
    else if (key !== 'payment method' || PAYMENT.test(m[2]!)) bag.add(key, m[2]!);
  }
  for (const m of known.matchAll(LINE_LABEL)) {
    const label = normalize(m[1]!);
    if (/^(you|your|the)\b|\b(is|are)$/.test(label)) continue; // "Your user id is: x" is handled above
    bag.add(LABEL_TO_KIND.get(label) ?? label, m[2]!);
  }
  if (!bag.has('name')) {
    const m = NAME.exec(known);
    if (m) bag.add('name', m[1]!);
  }
  for (const e of known.match(EMAIL) ?? []) bag.add('email', e);
  const withoutEmails = known.replace(EMAIL, ' ');
  if (!bag.has('user id')) for (const id of withoutEmails.match(USER_ID) ?? []) bag.add('user id', id);
  const address = ADDRESS.exec(known);
  if (address && !bag.has('address')) bag.add('address', address[0]);
  if (!bag.has('zip code')) {
    for (const m of withoutEmails.matchAll(ZIP_LABELLED)) bag.add('zip code', m[1]!);
    if (!bag.has('zip code')) for (const z of withoutEmails.match(FIVE_DIGITS) ?? []) bag.add('zip code', z);
  }
  const all = `${known}\n${context}`;
  for (const id of all.match(ORDER_ID) ?? []) bag.add('order id', id);
  for (const sentence of splitSentences(all)) {
    if (!/\b(reservations?|confirmations?|bookings?)\b/i.test(sentence)) continue;
    for (const code of sentence.match(BOOKING_CODE) ?? []) bag.add('reservation id', code);
  }
  const payment = PAYMENT.exec(all);
  if (payment && !bag.has('payment method')) bag.add('payment method', payment[1]!.toLowerCase().replace('paypal', 'PayPal'));
  return bag.list();
}

/**
 * What the user does not know, from the scenario's unknown-info text: each fact kind whose keywords
 * it mentions, plus "remember/know/have your <label>" phrases. Never throws.
 */
export function extractUnknown(text: string): UnknownItem[] {
  const t = normalize(text);
  const kinds = Object.entries(FACT_KINDS).map(([key, kind]) => ({ key, keywords: kind.keywords }));
  const out: UnknownItem[] = matchKeywords(t, kinds);
  for (const m of t.matchAll(/\b(?:remember|know|have)\s+(?:your|the)\s+([a-z][a-z ]{1,30}?)(?=[.,;]|$| and | or )/g)) {
    const label = m[1]!.trim();
    const kind = LABEL_TO_KIND.get(label);
    if (!kind && !out.some((u) => u.key === label)) out.push({ key: label, keywords: [label] });
  }
  return out;
}
