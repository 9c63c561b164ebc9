// JSON parsing that keeps Python's dict order: JS objects list integer-like keys ("1008292230") first,
// so an object holding any such key is returned as a Map in file order instead.

const INDEX_KEY = /^(0|[1-9][0-9]*)$/;

/** True for keys a JS object would enumerate before the others (canonical array indices). */
export function isIndexLikeKey(k: string): boolean {
  return INDEX_KEY.test(k) && Number(k) < 4294967295;
}

/** A JSON object as parsed here: a plain object, or a Map when key order would otherwise change. */
export type OrderedObject = Record<string, unknown> | Map<string, unknown>;

/** The entries of a parsed JSON object in file order. */
export function orderedEntries(v: OrderedObject): [string, unknown][] {
  return v instanceof Map ? [...v.entries()] : Object.entries(v);
}

const WS = new Set([' ', '\t', '\n', '\r']);
const SCALAR = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|true|false|null/y;

/**
 * Parses JSON text. Objects come back as plain objects, except those with an integer-like key, which
 * come back as `Map<string, unknown>` in file order (a later duplicate key replaces the value in place,
 * as Python's json does). Numbers are JS numbers. Throws SyntaxError with the offset on malformed input.
 */
export function parseOrderedJson(text: string): unknown {
  let i = 0;
  const fail = (what: string): never => {
    throw new SyntaxError(`invalid JSON at offset ${i}: ${what}`);
  };
  const skip = (): void => {
    while (i < text.length && WS.has(text[i]!)) i++;
  };
  const parseString = (): string => {
    const start = i;
    i++;
    let escaped = false;
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c === 0x22) break;
      if (c === 0x5c) {
        escaped = true;
        i += 2;
      } else i++;
    }
    if (i >= text.length) fail('unterminated string');
    i++;
    const raw = text.slice(start, i);
    return escaped ? (JSON.parse(raw) as string) : raw.slice(1, -1);
  };
  const value = (): unknown => {
    skip();
    const c = text[i];
    if (c === '{') {
      i++;
      const entries: [string, unknown][] = [];
      let indexLike = false;
      skip();
      if (text[i] === '}') {
        i++;
        return {};
      }
      for (;;) {
        skip();
        if (text[i] !== '"') fail('expected a key');
        const k = parseString();
        skip();
        if (text[i++] !== ':') fail("expected ':'");
        entries.push([k, value()]);
        indexLike ||= isIndexLikeKey(k);
        skip();
        const sep = text[i++];
        if (sep === '}') break;
        if (sep !== ',') fail("expected ',' or '}'");
      }
      if (indexLike) return new Map(entries);
      const o: Record<string, unknown> = {};
      for (const [k, x] of entries) o[k] = x;
      return o;
    }
    if (c === '[') {
      i++;
      const out: unknown[] = [];
      skip();
      if (text[i] === ']') {
        i++;
        return out;
      }
      for (;;) {
        out.push(value());
        skip();
        const sep = text[i++];
        if (sep === ']') break;
        if (sep !== ',') fail("expected ',' or ']'");
      }
      return out;
    }
    if (c === '"') return parseString();
    SCALAR.lastIndex = i;
    const m = SCALAR.exec(text);
    if (!m) return fail('unexpected character');
    i += m[0].length;
    if (m[0] === 'true') return true;
    if (m[0] === 'false') return false;
    if (m[0] === 'null') return null;
    return Number(m[0]);
  };
  const result = value();
  skip();
  if (i !== text.length) fail('trailing characters');
  return result;
}
