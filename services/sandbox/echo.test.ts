import { describe, expect, it } from 'vitest';
import { echo, echoAscii, ECHO_MAX_CHARS } from './echo.js';

describe('echo', () => {
  it('keeps short strings and cuts long ones to ECHO_MAX_CHARS with their length', () => {
    expect(echo('episode-1')).toBe('episode-1');
    expect(echo('a'.repeat(ECHO_MAX_CHARS))).toBe('a'.repeat(ECHO_MAX_CHARS));
    const cut = echo('a'.repeat(128 * 1024));
    expect(cut).toMatch(/^a+\.\.\. \(131072 chars\)$/);
    expect(cut.length).toBe(ECHO_MAX_CHARS);
  });
  it('never splits a surrogate pair', () => {
    const cut = echo('😀'.repeat(300));
    expect(cut.length).toBeLessThanOrEqual(ECHO_MAX_CHARS);
    expect(cut).toMatch(/^(😀)+\.\.\. \(600 chars\)$/u);
  });
  it('writes non-ASCII as \\uXXXX for metadata', () => {
    expect(echoAscii('größe\n')).toBe('gr\\u00f6\\u00dfe\\u000a');
    const cut = echoAscii('ü'.repeat(1000));
    expect(cut.startsWith('\\u00fc\\u00fc')).toBe(true);
    expect(cut.endsWith('... (6000 chars)')).toBe(true);
    expect(cut.length).toBe(ECHO_MAX_CHARS);
  });
});
