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

function escapeString(s: string): string {
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
}

/**
 * Serializes like Python `json.dumps(value, sort_keys=?)` with default separators and ensure_ascii.
 * Keys whose value is `undefined` are skipped (they do not exist in the Python object).
 * Throws on values Python's json cannot hold (functions, symbols, bigints).
 */
export function pyDumps(value: unknown, opts: DumpOptions = {}): string {
  const parts: string[] = [];
  const isFloat = opts.isFloatField ?? noFloatFields;
  const sort = opts.sortKeys ?? false;

  const write = (v: unknown, key: string | null, parent: Record<string, unknown> | null): void => {
    if (v === null || v === undefined) {
      parts.push('null');
    } else if (typeof v === 'string') {
      parts.push(escapeString(v));
    } else if (typeof v === 'boolean') {
      parts.push(v ? 'true' : 'false');
    } else if (typeof v === 'number') {
      parts.push(pyNumberStr(v, key !== null && parent !== null && isFloat(key, parent)));
    } else if (v instanceof PyFloat) {
      parts.push(pyFloatRepr(v.value));
    } else if (v instanceof PyInt) {
      parts.push(pyNumberStr(v.value, false));
    } else if (Array.isArray(v)) {
      parts.push('[');
      v.forEach((item, i) => {
        if (i > 0) parts.push(', ');
        // Array elements inherit the field's type (a list of floats stays floats).
        write(item, key, parent);
      });
      parts.push(']');
    } else if (typeof v === 'object') {
      const obj = v as Record<string, unknown>;
      let keys = Object.keys(obj).filter((k) => obj[k] !== undefined);
      if (sort) keys = keys.sort();
      parts.push('{');
      keys.forEach((k, i) => {
        if (i > 0) parts.push(', ');
        parts.push(escapeString(k), ': ');
        write(obj[k], k, obj);
      });
      parts.push('}');
    } else {
      throw new TypeError(`cannot serialize a value of type ${typeof v}`);
    }
  };
  write(value, null, null);
  return parts.join('');
}

/**
 * Parses JSON text like Python's `json.loads`, keeping the int/float distinction:
 * a number written with a fraction or exponent (`2.0`, `1e3`) that is integral becomes a PyFloat.
 * Throws SyntaxError (with a position) on malformed JSON.
 */
export function parsePyJson(text: string): unknown {
  // Fast path: no number lexeme with a fraction/exponent part means JSON.parse is exact.
  if (!/[0-9][.eE]/.test(text)) return JSON.parse(text);
  const floats: number[] = [];
  // Replace integral float lexemes outside strings with a sentinel string we can recognise.
  let out = '';
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    if (ch === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
    } else if (ch === '-' || (ch >= '0' && ch <= '9')) {
      const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(i));
      if (!m) {
        out += ch;
        i++;
        continue;
      }
      const lex = m[0];
      const val = Number(lex);
      if ((m[2] || m[3]) && Number.isInteger(val)) {
        floats.push(val);
        out += `"\u0000pyfloat:${floats.length - 1}"`;
      } else {
        out += lex;
      }
      i += lex.length;
    } else {
      out += ch;
      i++;
    }
  }
  return JSON.parse(out, (_k, v) => {
    if (typeof v === 'string' && v.startsWith('\u0000pyfloat:')) return new PyFloat(floats[Number(v.slice(9))]!);
    return v;
  });
}
