// Pydantic-like (lax mode) validation for the models that airline tools construct from arguments:
// coercion rules of TOOLS.md §0.6 and error texts that start like pydantic's (`1 validation error for Passenger`).

import { ToolError } from '../../domain.js';
import { PyFloat, PyInt, pyStr } from '../../pyjson.js';

/** Python's name for the type of a parsed JSON value. */
export function pyTypeName(v: unknown): string {
  if (v === null || v === undefined) return 'NoneType';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'string') return 'str';
  if (v instanceof PyFloat) return 'float';
  if (v instanceof PyInt) return 'int';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float';
  if (Array.isArray(v)) return 'list';
  return 'dict';
}

/** Python `repr()` of a parsed JSON value (strings quoted the way Python quotes them). */
export function pyRepr(v: unknown): string {
  if (typeof v === 'string') {
    const quote = v.includes("'") && !v.includes('"') ? '"' : "'";
    let out = '';
    for (const ch of v) {
      const c = ch.codePointAt(0)!;
      if (ch === '\\') out += '\\\\';
      else if (ch === quote) out += '\\' + ch;
      else if (ch === '\n') out += '\\n';
      else if (ch === '\r') out += '\\r';
      else if (ch === '\t') out += '\\t';
      else if (c < 0x20 || c === 0x7f) out += '\\x' + c.toString(16).padStart(2, '0');
      else out += ch;
    }
    return quote + out + quote;
  }
  if (Array.isArray(v)) return '[' + v.map(pyRepr).join(', ') + ']';
  if (v !== null && typeof v === 'object' && !(v instanceof PyFloat) && !(v instanceof PyInt)) {
    return '{' + Object.entries(v).map(([k, x]) => `${pyRepr(k)}: ${pyRepr(x)}`).join(', ') + '}';
  }
  return pyStr(v);
}

/** One pydantic error line: location, message, error type. */
export interface FieldIssue {
  loc: string;
  msg: string;
  type: string;
  input?: unknown;
  hasInput?: boolean;
}

/** The error a failed model construction raises; its text follows pydantic's layout. */
export function validationError(model: string, issues: FieldIssue[]): ToolError {
  const n = issues.length;
  const lines = [`${n} validation error${n === 1 ? '' : 's'} for ${model}`];
  for (const i of issues) {
    lines.push(i.loc);
    const input = i.hasInput === false ? '' : `, input_value=${pyRepr(i.input)}, input_type=${pyTypeName(i.input)}`;
    lines.push(`  ${i.msg} [type=${i.type}${input}]`);
  }
  return new ToolError(lines.join('\n'));
}

/** Collects issues while building one model object. */
export class ModelBuilder {
  readonly issues: FieldIssue[] = [];

  constructor(
    readonly model: string,
    private readonly input: Record<string, unknown>,
    private readonly prefix = '',
  ) {}

  private issue(field: string, msg: string, type: string, value: unknown): undefined {
    this.issues.push({ loc: this.prefix + field, msg, type, input: value });
    return undefined;
  }

  private present(field: string): boolean {
    if (Object.hasOwn(this.input, field) && this.input[field] !== undefined) return true;
    this.issues.push({ loc: this.prefix + field, msg: 'Field required', type: 'missing', input: this.input });
    return false;
  }

  /** A `str` field: only strings pass (pydantic does not turn numbers into strings). */
  str(field: string): string | undefined {
    if (!this.present(field)) return undefined;
    const v = this.input[field];
    return typeof v === 'string' ? v : this.issue(field, 'Input should be a valid string', 'string_type', v);
  }

  /** An `int` field: ints, bools, integral floats and integer strings; stores a plain int. */
  int(field: string): number | undefined {
    if (!this.present(field)) return undefined;
    const r = coerceInt(this.input[field]);
    return typeof r === 'number' ? r : this.issue(field, r.msg, r.type, this.input[field]);
  }

  /** A `float` field: numbers, bools and numeric strings; stores a plain number (the schema marks it float). */
  float(field: string): number | undefined {
    if (!this.present(field)) return undefined;
    const v = this.input[field];
    if (typeof v === 'boolean') return v ? 1 : 0;
    if (v instanceof PyFloat || v instanceof PyInt) return v.value;
    if (typeof v === 'number') return v;
    if (typeof v === 'string') {
      const t = v.trim().toLowerCase();
      if (/^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)(e[+-]?[0-9]+)?$/.test(t)) return Number(t);
      if (/^[+-]?(inf|infinity)$/.test(t)) return t.startsWith('-') ? -Infinity : Infinity;
      if (/^[+-]?nan$/.test(t)) return NaN;
      return this.issue(field, 'Input should be a valid number, unable to parse string as a number', 'float_parsing', v);
    }
    return this.issue(field, 'Input should be a valid number', 'float_type', v);
  }

  /** A Literal field: the string must equal one of the choices. */
  literal<T extends string>(field: string, choices: readonly T[]): T | undefined {
    if (!this.present(field)) return undefined;
    const v = this.input[field];
    if (typeof v === 'string' && (choices as readonly string[]).includes(v)) return v as T;
    const quoted = choices.map((c) => `'${c}'`);
    const expected = quoted.length > 1 ? `${quoted.slice(0, -1).join(', ')} or ${quoted[quoted.length - 1]}` : quoted[0];
    return this.issue(field, `Input should be ${expected}`, 'literal_error', v);
  }

  /** Records the issues of a nested model under this builder's location. */
  absorb(nested: ModelBuilder): void {
    this.issues.push(...nested.issues);
  }

  /** Throws the pydantic-style error when any field failed. */
  done<T>(value: T): T {
    if (this.issues.length > 0) throw validationError(this.model, this.issues);
    return value;
  }
}

/** Lax int coercion: returns the int, or the pydantic error message and type. */
export function coerceInt(v: unknown): number | { msg: string; type: string } {
  if (typeof v === 'boolean') return v ? 1 : 0;
  const n = v instanceof PyFloat || v instanceof PyInt ? v.value : v;
  if (typeof n === 'number') {
    if (!Number.isFinite(n)) return { msg: 'Input should be a finite number', type: 'finite_number' };
    if (!Number.isInteger(n)) {
      return { msg: 'Input should be a valid integer, got a number with a fractional part', type: 'int_from_float' };
    }
    return n === 0 ? 0 : n;
  }
  if (typeof n === 'string') {
    const m = /^\s*([+-]?[0-9]+)(\.0*)?\s*$/.exec(n);
    if (m) return Number(m[1]) || 0;
    return { msg: 'Input should be a valid integer, unable to parse string as an integer', type: 'int_parsing' };
  }
  return { msg: 'Input should be a valid integer', type: 'int_type' };
}

function isDict(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof PyFloat) && !(v instanceof PyInt);
}

/** Python `all(isinstance(x, dict) for x in items)`. */
export function allDicts(items: unknown[]): items is Record<string, unknown>[] {
  return items.every(isDict);
}

type ModelFn<T> = (b: ModelBuilder) => T;

export const passengerModel: ModelFn<{ first_name: string; last_name: string; dob: string }> = (b) => ({
  first_name: b.str('first_name')!,
  last_name: b.str('last_name')!,
  dob: b.str('dob')!,
});

export const flightInfoModel: ModelFn<{ flight_number: string; date: string }> = (b) => ({
  flight_number: b.str('flight_number')!,
  date: b.str('date')!,
});

export const paymentModel: ModelFn<{ payment_id: string; amount: number }> = (b) => ({
  payment_id: b.str('payment_id')!,
  amount: b.int('amount')!,
});

/** `Model(**input)`: builds one model from a dict; throws `N validation error(s) for <model>`. */
export function construct<T>(model: string, fn: ModelFn<T>, input: Record<string, unknown>): T {
  const b = new ModelBuilder(model, input);
  const value = fn(b);
  return b.done(value);
}

/**
 * Validates a list-of-models field inside an enclosing model (e.g. Reservation.passengers):
 * dicts are validated as the item model, anything else is a model_type issue.
 */
export function nestedList<T>(
  outer: ModelBuilder,
  field: string,
  itemModel: string,
  fn: ModelFn<T>,
  items: unknown[],
): T[] {
  return items.map((item, i) => {
    if (!isDict(item)) {
      outer.issues.push({
        loc: `${field}.${i}`,
        msg: `Input should be a valid dictionary or instance of ${itemModel}`,
        type: 'model_type',
        input: item,
      });
      return undefined as T;
    }
    const b = new ModelBuilder(itemModel, item, `${field}.${i}.`);
    const value = fn(b);
    outer.absorb(b);
    return value;
  });
}
