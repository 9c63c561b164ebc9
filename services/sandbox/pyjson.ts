// Python `json.dumps`-compatible serialization (ensure_ascii, ", "/": " separators, optional sort_keys),
// so that DB hashes and tool outputs equal tau2-bench's byte for byte (TOOLS.md §0.3 and §1).

/** A number that Python holds as a float even when integral (prints `2.0`). */
export class PyFloat {
  constructor(readonly value: number) {}
  valueOf(): number {
    return this.value;
  }
}

/** A number that Python holds as an int (prints `0`, never `0.0`), overriding a float-typed field. */
export class PyInt {
  constructor(readonly value: number) {}
  valueOf(): number {
    return this.value;
  }
}

/** Unwraps PyFloat/PyInt to a plain number; leaves anything else alone. */
export function num(v: unknown): unknown {
  return v instanceof PyFloat || v instanceof PyInt ? v.value : v;
}

/** True for a JS number or a tagged Python number. */
export function isNumeric(v: unknown): v is number | PyFloat | PyInt {
  return typeof v === 'number' || v instanceof PyFloat || v instanceof PyInt;
}

/**
 * Decides whether an untagged number under `key` of `parent` is a Python float
 * (schema knowledge that JSON.parse loses: `100.0` and `100` are the same JS number).
 */
export type FloatFieldPredicate = (key: string, parent: Record<string, unknown>) => boolean;

export const noFloatFields: FloatFieldPredicate = () => false;

/** Python `repr(float)`: shortest round-trip digits, `.0` on integral values, exponent outside [1e-4, 1e16). */
export function pyFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return 'Infinity';
  if (x === -Infinity) return '-Infinity';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const abs = Math.abs(x);
  if (abs >= 1e16 || abs < 1e-4) {
    // toExponential() without an argument gives the shortest round-trip mantissa.
    const [mant, exp] = x.toExponential().split('e') as [string, string];
    const sign = exp.startsWith('-') ? '-' : '+';
    const digits = exp.replace(/^[+-]/, '').padStart(2, '0');
    return `${mant}e${sign}${digits}`;
  }
  const s = String(x);
  return Number.isInteger(x) ? `${s}.0` : s;
}

/** Python `str(int)` / `str(float)` of a number whose Python type is given. */
export function pyNumberStr(x: number, isFloat: boolean): string {
  if (isFloat) return pyFloatRepr(x);
  if (!Number.isInteger(x)) return pyFloatRepr(x);
  return Object.is(x, -0) ? '0' : String(x);
}

/** Python `str()` of a scalar argument as a tool received it (used where tau2 formats an argument). */
export function pyStr(v: unknown): string {
  if (v instanceof PyFloat) return pyFloatRepr(v.value);
  if (v instanceof PyInt) return String(v.value);
  if (typeof v === 'number') return pyNumberStr(v, false);
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (v === null || v === undefined) return 'None';
  if (typeof v === 'string') return v;
  return pyDumps(v);
}

const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

function escapeString(s: string): string {
  // Most strings are printable ASCII without quotes or backslashes: nothing to escape.
  if (PLAIN.test(s)) return `"${s}"`;
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x22) out += '\\"';
    else if (c === 0x5c) out += '\\\\';
    else if (c === 0x0a) out += '\\n';
    else if (c === 0x0d) out += '\\r';
    else if (c === 0x09) out += '\\t';
    else if (c === 0x08) out += '\\b';
    else if (c === 0x0c) out += '\\f';
    else if (c < 0x20 || c > 0x7e) out += '\\u' + c.toString(16).padStart(4, '0');
    else out += s[i];
  }
  return out + '"';
}

export interface DumpOptions {
  sortKeys?: boolean;
  isFloatField?: FloatFieldPredicate;
  /** The field `value` sits in, for a value serialized on its own (a number's repr depends on it). */
  field?: { key: string; parent: Record<string, unknown> };
}

// Serializations of deeply frozen subtrees, per (sortKeys, float predicate). A loaded DB is frozen and
// shared by every session (copy-on-write), so hashing a session's DB re-serializes only what it changed.
const frozenCaches = new WeakMap<FloatFieldPredicate, [WeakMap<object, string>, WeakMap<object, string>]>();

function frozenCache(isFloat: FloatFieldPredicate, sort: boolean): WeakMap<object, string> {
  let pair = frozenCaches.get(isFloat);
  if (!pair) {
    pair = [new WeakMap(), new WeakMap()];
    frozenCaches.set(isFloat, pair);
  }
  return pair[sort ? 1 : 0];
}

/**
 * Serializes like Python `json.dumps(value, sort_keys=?)` with default separators and ensure_ascii.
 * Keys whose value is `undefined` are skipped (they do not exist in the Python object). A `Map` with
 * string keys is a dict in insertion order (float predicates then see the Map as `parent`).
 * Throws on values Python's json cannot hold (functions, symbols, bigints).
 */
export function pyDumps(value: unknown, opts: DumpOptions = {}): string {
  return pyDumpsPieces(value, opts).join('');
}

/**
 * pyDumps's text as consecutive pieces, for callers that stream it (a hash of a large DB): each frozen
 * subtree is one flat cached piece, so nothing re-walks or re-copies the unchanged part of a DB.
 */
export function pyDumpsPieces(value: unknown, opts: DumpOptions = {}): string[] {
  const isFloat = opts.isFloatField ?? noFloatFields;
  const sort = opts.sortKeys ?? false;
  const cache = frozenCache(isFloat, sort);
  const out: string[] = [];

  // Appends v's text; returns whether v is immutable all the way down (so its parent may be cached).
  const write = (v: unknown, key: string | null, parent: Record<string, unknown> | null): boolean => {
    if (v === null || v === undefined) {
      out.push('null');
      return true;
    }
    switch (typeof v) {
      case 'string':
        out.push(escapeString(v));
        return true;
      case 'boolean':
        out.push(v ? 'true' : 'false');
        return true;
      case 'number':
        // A number's repr depends on its field (key, parent); the parent's cache entry covers that.
        out.push(pyNumberStr(v, key !== null && parent !== null && isFloat(key, parent)));
        return true;
      case 'object':
        break;
      default:
        throw new TypeError(`cannot serialize a value of type ${typeof v}`);
    }
    if (v instanceof PyFloat) {
      out.push(pyFloatRepr(v.value));
      return true;
    }
    if (v instanceof PyInt) {
      out.push(pyNumberStr(v.value, false));
      return true;
    }
    const frozen = Object.isFrozen(v);
    // Arrays inherit the field's type from (key, parent), so only objects are cached on their own.
    const cacheable = frozen && !Array.isArray(v);
    if (cacheable) {
      const hit = cache.get(v);
      if (hit !== undefined) {
        out.push(hit);
        return true;
      }
    }
    const mark = out.length;
    let allImmutable = frozen;
    if (Array.isArray(v)) {
      out.push('[');
      for (let i = 0; i < v.length; i++) {
        if (i > 0) out.push(', ');
        // Array elements inherit the field's type (a list of floats stays floats).
        allImmutable = write(v[i], key, parent) && allImmutable;
      }
      out.push(']');
    } else if (v instanceof Map) {
      // A dict whose keys JS objects would reorder (integer-like keys such as "1008292230" come first
      // in an object): a Map keeps Python's insertion order. Keys must be strings.
      let keys = [...(v as Map<string, unknown>).keys()];
      if (sort) keys = keys.sort();
      const asParent = v as unknown as Record<string, unknown>;
      out.push('{');
      let first = true;
      for (const k of keys) {
        const x = v.get(k);
        if (x === undefined) continue;
        out.push(first ? '' : ', ', escapeString(k), ': ');
        allImmutable = write(x, k, asParent) && allImmutable;
        first = false;
      }
      out.push('}');
    } else {
      const obj = v as Record<string, unknown>;
      let keys = Object.keys(obj);
      if (sort) keys = keys.sort();
      out.push('{');
      let first = true;
      for (const k of keys) {
        const x = obj[k];
        if (x === undefined) continue;
        out.push(first ? '' : ', ', escapeString(k), ': ');
        allImmutable = write(x, k, obj) && allImmutable;
        first = false;
      }
      out.push('}');
    }
    if (cacheable && allImmutable) {
      // join() builds one flat string: later serializations reuse it without walking its parts.
      const text = out.splice(mark).join('');
      cache.set(v, text);
      out.push(text);
    }
    return allImmutable;
  };
  write(value, opts.field?.key ?? null, opts.field?.parent ?? null);
  return out;
}

/** Whether pyDumps writes `v` as a dict (a plain object or a Map). */
function isDict(v: unknown): v is object {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof PyFloat) && !(v instanceof PyInt);
}

/** The dict's keys and a lookup that answers undefined for absent keys (which pyDumps skips, as unset ones). */
function dictView(v: object): [string[], (k: string) => unknown] {
  if (v instanceof Map) return [[...(v as Map<string, unknown>).keys()], (k) => v.get(k)];
  const o = v as Record<string, unknown>;
  return [Object.keys(o), (k) => (Object.hasOwn(o, k) ? o[k] : undefined)];
}

/**
 * Whether `pyDumps(a, {sortKeys: true})` equals `pyDumps(b, {sortKeys: true})`, without serializing what
 * the two share. Two copy-on-write states that grew from one loaded DB share every unchanged object, so
 * comparing them walks only the paths to what either changed (retail: a few rows of 1 500), where hashing
 * both would serialize 1.5 MB.
 */
export function sameSortedDump(a: unknown, b: unknown, isFloatField: FloatFieldPredicate = noFloatFields): boolean {
  const same = (x: unknown, y: unknown, key: string | null, px: Record<string, unknown> | null, py: Record<string, unknown> | null): boolean => {
    // An object's text depends only on its contents; a number's (and an array's numbers') also on its field.
    if (x === y && (key === null || px === py || (typeof x !== 'number' && !Array.isArray(x)))) return true;
    if (isDict(x) && isDict(y)) {
      const [kx, gx] = dictView(x);
      const [ky, gy] = dictView(y);
      let defined = 0;
      for (const k of kx) {
        const vx = gx(k);
        if (vx === undefined) continue;
        defined++;
        const vy = gy(k);
        if (vy === undefined || !same(vx, vy, k, x as Record<string, unknown>, y as Record<string, unknown>)) return false;
      }
      // Every defined key of x is defined in y: the key sets are equal when y has no other defined keys.
      let definedY = 0;
      for (const k of ky) if (gy(k) !== undefined) definedY++;
      return defined === definedY;
    }
    if (Array.isArray(x) && Array.isArray(y)) {
      // Elements inherit the array's field.
      return x.length === y.length && x.every((v, i) => same(v, y[i], key, px, py));
    }
    const text = (v: unknown, parent: Record<string, unknown> | null) =>
      pyDumpsPieces(v, { sortKeys: true, isFloatField, field: key !== null && parent !== null ? { key, parent } : undefined }).join('');
    return text(x, px) === text(y, py);
  };
  return same(a, b, null, null, null);
}

/** Freezes a JSON-like tree in place (all objects and arrays), so it can be shared and its serialization cached. */
export function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of v instanceof Map ? v.values() : Object.values(v as object)) deepFreeze(x);
  }
  return v;
}

/**
 * The deepest nesting of arrays and objects parsePyJson accepts. Python's decoder gives up near its
 * recursion limit (1000); tool arguments and task files nest a handful of levels, and everything that
 * walks a parsed value (schema checks, serialization, this scanner) recurses once per level.
 */
export const MAX_JSON_DEPTH = 100;

/** JSON nested deeper than MAX_JSON_DEPTH (a SyntaxError, so callers that refuse bad JSON refuse it too). */
export class JsonDepthError extends SyntaxError {
  override name = 'JsonDepthError';
}

/**
 * Throws JsonDepthError where arrays and objects nest deeper than MAX_JSON_DEPTH. Strings are skipped as
 * the scanner reads them, so the scanner never goes deeper than this counts, even on malformed text.
 */
function checkDepth(text: string): void {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // Skip the string: a backslash escapes the next character.
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c) i++;
        else if (d === 0x22) break;
      }
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > MAX_JSON_DEPTH) throw new JsonDepthError(`nesting deeper than ${MAX_JSON_DEPTH} levels at position ${i}`);
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
}

/**
 * Parses JSON text like Python's `json.loads`, keeping the int/float distinction: a number written with a
 * fraction or exponent (`50.0`, `5e1`) is a float in Python, so an integral one becomes a PyFloat (a
 * non-integral one is a plain number, which every consumer already treats as a float). Like Python it
 * also accepts `NaN`, `Infinity` and `-Infinity`, and refuses control characters inside strings.
 * `__proto__` and `constructor` are ordinary keys (own properties; no prototype is touched).
 * Throws SyntaxError naming the position on malformed JSON, JsonDepthError (a SyntaxError) on nesting
 * deeper than MAX_JSON_DEPTH.
 */
export function parsePyJson(text: string): unknown {
  checkDepth(text);
  // Fast path: without a fraction/exponent there is no float to tag, and JSON.parse is exact. Text it
  // refuses (NaN, Infinity, or malformed) goes to the scanner, which accepts what Python accepts.
  if (!/[0-9][.eE]/.test(text)) {
    try {
      return JSON.parse(text);
    } catch {
      // fall through
    }
  }
  return new PyJsonScanner(text).document();
}

// Python's number grammar (Lib/json/scanner.py NUMBER_RE).
const NUMBER = /-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?/y;
const WS = /[ \t\n\r]*/y;
const STRING_CHUNK = /[^"\\\x00-\x1f]*/y;
const ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

/**
 * A recursive-descent JSON reader with the grammar of CPython's pure-Python scanner
 * (Lib/json/scanner.py py_make_scanner, Lib/json/decoder.py JSONObject/JSONArray/py_scanstring, strict mode).
 */
class PyJsonScanner {
  private pos = 0;
  constructor(private readonly text: string) {}

  document(): unknown {
    this.skipWs();
    const v = this.value();
    this.skipWs();
    if (this.pos !== this.text.length) this.fail('Extra data');
    return v;
  }

  private fail(what: string): never {
    throw new SyntaxError(`${what} at position ${this.pos}`);
  }

  private skipWs(): void {
    WS.lastIndex = this.pos;
    WS.exec(this.text);
    this.pos = WS.lastIndex;
  }

  private literal(word: string, value: unknown): unknown {
    if (!this.text.startsWith(word, this.pos)) this.fail('Expecting value');
    this.pos += word.length;
    return value;
  }

  private value(): unknown {
    const t = this.text;
    const ch = t[this.pos];
    switch (ch) {
      case '"':
        return this.string();
      case '{':
        return this.object();
      case '[':
        return this.array();
      case 'n':
        return this.literal('null', null);
      case 't':
        return this.literal('true', true);
      case 'f':
        return this.literal('false', false);
      case 'N':
        return this.literal('NaN', NaN);
      case 'I':
        return this.literal('Infinity', Infinity);
    }
    NUMBER.lastIndex = this.pos;
    const m = NUMBER.exec(t);
    if (m) {
      this.pos = NUMBER.lastIndex;
      const x = Number(m[0]);
      // Python: float(...) when a fraction or exponent is present, else int(...).
      return (m[1] !== undefined || m[2] !== undefined) && Number.isInteger(x) ? new PyFloat(x) : x;
    }
    if (t.startsWith('-Infinity', this.pos)) return this.literal('-Infinity', -Infinity);
    this.fail('Expecting value');
  }

  private string(): string {
    const t = this.text;
    this.pos++; // opening quote
    let out = '';
    for (;;) {
      STRING_CHUNK.lastIndex = this.pos;
      out += STRING_CHUNK.exec(t)![0];
      this.pos = STRING_CHUNK.lastIndex;
      const c = t[this.pos];
      if (c === '"') {
        this.pos++;
        return out;
      }
      if (c === undefined) this.fail('Unterminated string starting');
      if (c !== '\\') this.fail('Invalid control character');
      const e = t[this.pos + 1];
      if (e === 'u') {
        const hex = t.slice(this.pos + 2, this.pos + 6);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail('Invalid \\uXXXX escape');
        // UTF-16 code units: a surrogate pair written as two escapes joins as Python joins it.
        out += String.fromCharCode(parseInt(hex, 16));
        this.pos += 6;
      } else {
        const r = e === undefined ? undefined : ESCAPES[e];
        if (r === undefined) this.fail('Invalid \\escape');
        out += r;
        this.pos += 2;
      }
    }
  }

  private object(): Record<string, unknown> {
    const t = this.text;
    const obj: Record<string, unknown> = {};
    this.pos++;
    this.skipWs();
    if (t[this.pos] === '}') {
      this.pos++;
      return obj;
    }
    for (;;) {
      if (t[this.pos] !== '"') this.fail('Expecting property name enclosed in double quotes');
      const key = this.string();
      this.skipWs();
      if (t[this.pos] !== ':') this.fail("Expecting ':' delimiter");
      this.pos++;
      this.skipWs();
      const v = this.value();
      // A "__proto__" key is an own property, as JSON.parse makes it; a repeated key keeps the last value.
      Object.defineProperty(obj, key, { value: v, writable: true, enumerable: true, configurable: true });
      this.skipWs();
      const c = t[this.pos++];
      if (c === '}') return obj;
      if (c !== ',') {
        this.pos--;
        this.fail("Expecting ',' delimiter");
      }
      this.skipWs();
    }
  }

  private array(): unknown[] {
    const t = this.text;
    const arr: unknown[] = [];
    this.pos++;
    this.skipWs();
    if (t[this.pos] === ']') {
      this.pos++;
      return arr;
    }
    for (;;) {
      arr.push(this.value());
      this.skipWs();
      const c = t[this.pos++];
      if (c === ']') return arr;
      if (c !== ',') {
        this.pos--;
        this.fail("Expecting ',' delimiter");
      }
      this.skipWs();
    }
  }
}
