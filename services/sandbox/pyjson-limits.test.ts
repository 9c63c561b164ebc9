// parsePyJson under hostile input: nesting past MAX_JSON_DEPTH is a JsonDepthError (never a stack
// overflow), and `__proto__` / `constructor` are ordinary keys on both the fast and the scanning path.

import { describe, expect, it } from 'vitest';
import { JsonDepthError, MAX_JSON_DEPTH, PyFloat, parsePyJson } from './pyjson.js';

const nested = (depth: number, inner = '1') => '['.repeat(depth) + inner + ']'.repeat(depth);

describe('parsePyJson limits', () => {
  it('accepts nesting up to MAX_JSON_DEPTH and refuses deeper, on both paths', () => {
    expect(JSON.stringify(parsePyJson(nested(MAX_JSON_DEPTH)))).toBe(nested(MAX_JSON_DEPTH));
    expect(parsePyJson(`{"a": ${nested(MAX_JSON_DEPTH - 1, '1.0')}}`)).toHaveProperty('a');
    for (const inner of ['1', '1.0']) {
      expect(() => parsePyJson(nested(MAX_JSON_DEPTH + 1, inner))).toThrow(JsonDepthError);
      expect(() => parsePyJson(nested(30_000, inner))).toThrow(new JsonDepthError(`nesting deeper than ${MAX_JSON_DEPTH} levels at position ${MAX_JSON_DEPTH}`));
      expect(() => parsePyJson('{"a":'.repeat(30_000) + inner)).toThrow(JsonDepthError);
    }
  });

  it('does not count brackets inside strings, escaped quotes included', () => {
    const text = JSON.stringify({ s: '["\\'.repeat(5000), t: '{'.repeat(5000), x: 1.0 }).replace('"x":1', '"x":1.0');
    const v = parsePyJson(text) as Record<string, unknown>;
    expect(v.s).toBe('["\\'.repeat(5000));
    expect(v.x).toEqual(new PyFloat(1));
  });

  it('keeps __proto__ and constructor as own keys and touches no prototype', () => {
    for (const num of ['1', '1.0']) {
      const v = parsePyJson(`{"__proto__": {"polluted": ${num}}, "constructor": {"prototype": {"polluted": ${num}}}}`) as Record<string, unknown>;
      expect(Object.keys(v)).toEqual(['__proto__', 'constructor']);
      expect(Object.getPrototypeOf(v)).toBe(Object.prototype);
      expect(Object.getOwnPropertyDescriptor(v, '__proto__')?.value).toHaveProperty('polluted');
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      expect((Object.prototype as Record<string, unknown>).polluted).toBeUndefined();
    }
  });
});
