// calculate must answer exactly as tau2's Python tool does: the TOOLS.md examples, then a table of outputs
// recorded from CPython 3.11.7 running the reference expression (`str(round(float(eval(e)), 2))`).

import { describe, expect, it } from 'vitest';
import { CowStore } from '../../cow-store.js';
import { ToolError } from '../../domain.js';
import { calculate } from './calculate.js';
import { calculateTool, transferTool } from './generic-tools.js';
import { pyRound } from './pyround.js';

/** The tool's text as the agent sees it: the result, or `Error: <message>`. */
function shown(expression: string): string {
  try {
    return calculate(expression);
  } catch (e) {
    if (!(e instanceof ToolError)) throw e;
    return `Error: ${e.message}`;
  }
}

describe('calculate', () => {
  it('reproduces the TOOLS.md examples', () => {
    expect(calculate('2 + 2')).toBe('4.0');
    expect(calculate('5 / 2')).toBe('2.5');
    expect(calculate('1 / 3')).toBe('0.33');
    expect(calculate('2 ** 10')).toBe('1024.0');
    expect(calculate('-2')).toBe('-2.0');
    expect(calculate('2.675')).toBe('2.67');
    expect(calculate('10 ** 16')).toBe('1e+16');
    expect(calculate('10 ** 17 + 0.5')).toBe('1e+17');
    expect(() => calculate('1e3')).toThrow(new ToolError('Invalid characters in expression'));
    expect(() => calculate('2+')).toThrow(new ToolError('invalid syntax (<string>, line 1)'));
    expect(() => calculate('1 / 0')).toThrow(new ToolError('division by zero'));
  });

  // [expression, what CPython 3.11.7 answered]
  const RECORDED: [string, string][] = [
  ['2 + 2', '4.0'],
  ['5 / 2', '2.5'],
  ['1/3', '0.33'],
  ['2 ** 10', '1024.0'],
  ['-2', '-2.0'],
  ['2.675', '2.67'],
  ['1e3', 'Error: Invalid characters in expression'],
  ['2+', 'Error: invalid syntax (<string>, line 1)'],
  ['1 / 0', 'Error: division by zero'],
  ['10**16', '1e+16'],
  ['10**15*1.0', '1000000000000000.0'],
  ['1.005*1', '1.0'],
  ['0.125', '0.12'],
  ['0.375', '0.38'],
  ['-0.125', '-0.12'],
  ['0-0.001', '-0.0'],
  ['(12.5 + 3) * 2', '31.0'],
  ['100 - 20%', 'Error: Invalid characters in expression'],
  ['1,000 + 2', 'Error: Invalid characters in expression'],
  ['7 // 2', '3.0'],
  ['-7 // 2', '-4.0'],
  ['-7.5 // 2', '-4.0'],
  ['1.0 / 0', 'Error: float division by zero'],
  ['1 // 0', 'Error: integer division or modulo by zero'],
  ['1.0 // 0', 'Error: float floor division by zero'],
  ['0 ** -1', 'Error: 0.0 cannot be raised to a negative power'],
  ['2 ** -1', '0.5'],
  ['(-8) ** 0.5', "Error: float() argument must be a string or a real number, not 'complex'"],
  ['(-8) ** 0.5 / 0', 'Error: complex division by zero'],
  ['10.0 ** 400', "Error: (34, 'Numerical result out of range')"],
  ['10.0 ** 308 * 10', 'inf'],
  ['10 ** 400 / 3', 'Error: integer division result too large for a float'],
  ['10 ** 400 / 10 ** 399', '10.0'],
  ['10 ** 400 * 1.0', 'Error: int too large to convert to float'],
  ['0 / -5', '-0.0'],
  ['3 ** 0.5', '1.73'],
  ['1.1 ** 2', '1.21'],
  ['100 * 1.05 ** 12', '179.59'],
  ['99999999999999999 + 1', '1e+17'],
  ['123456789012345678901234567890 / 7', '1.763668414462081e+28'],
  ['(1 2)', 'Error: invalid syntax. Perhaps you forgot a comma? (<string>, line 1)'],
  ['(1 2', "Error: '(' was never closed (<string>, line 1)"],
  ['1 2)', "Error: unmatched ')' (<string>, line 1)"],
  ['(*1)', 'Error: cannot use starred expression here (<string>, line 1)'],
  ['(**1)', 'Error: cannot use double starred expression here (<string>, line 1)'],
  ['007', 'Error: leading zeros in decimal integer literals are not permitted; use an 0o prefix for octal integers (<string>, line 1)'],
  ['00.5', '0.5'],
  ['', 'Error: invalid syntax (<string>, line 0)'],
  ['   ', 'Error: invalid syntax (<string>, line 0)'],
  ['()', "Error: float() argument must be a string or a real number, not 'tuple'"],
  ['...', "Error: float() argument must be a string or a real number, not 'ellipsis'"],
  ['1 + ()', "Error: unsupported operand type(s) for +: 'int' and 'tuple'"],
  ['() * 2.0', "Error: can't multiply sequence by non-int of type 'float'"],
  ['1 (2)', "Error: 'int' object is not callable"],
  ['1(*2)', 'Error: 1 argument after * must be an iterable, not int'],
  ['1(**())', 'Error: 1 argument after ** must be a mapping, not tuple'],
  ['-()', "Error: bad operand type for unary -: 'tuple'"],
  ['()()', "Error: 'tuple' object is not callable"],
  ['1 .5', 'Error: invalid syntax (<string>, line 1)'],
  ['1..2', 'Error: invalid syntax (<string>, line 1)'],
  ['.5 + 5.', '5.5'],
  ['('.repeat(201) + '1' + ')'.repeat(201), 'Error: too many nested parentheses (<string>, line 1)'],
  ];
  it.each(RECORDED)('%j → %j', (expression, expected) => {
    expect(shown(expression)).toBe(expected);
  });

  it('handles long chains without exhausting the stack', () => {
    expect(shown('1+'.repeat(2000) + '1')).toBe('2001.0');
    expect(shown('-'.repeat(2000) + '1')).toBe('1.0');
    expect(shown('-'.repeat(4000) + '1')).toBe('Error: maximum recursion depth exceeded during compilation');
    expect(shown('-'.repeat(7000) + '1')).toBe('Error: ');
    expect(shown('1**'.repeat(3000) + '1')).toBe('Error: ');
  });
});

describe('pyRound', () => {
  it('rounds half to even on the exact binary value', () => {
    expect(pyRound(2.675, 2)).toBe(2.67); // 2.67499999… in binary
    expect(pyRound(0.125, 2)).toBe(0.12); // an exact tie: to even
    expect(pyRound(0.375, 2)).toBe(0.38);
    expect(pyRound(1.005, 2)).toBe(1); // 1.00499999…
    expect(pyRound(4128.449999999999, 2)).toBe(4128.45);
    expect(pyRound(0.995, 2)).toBe(0.99);
    expect(pyRound(-0.001, 2)).toBe(-0);
    expect(Object.is(pyRound(-0.001, 2), -0)).toBe(true);
    expect(pyRound(2.5, 0)).toBe(2);
    expect(pyRound(1e300, 2)).toBe(1e300);
    expect(pyRound(Infinity, 2)).toBe(Infinity);
  });
});

describe('generic tools', () => {
  const state = { db: new CowStore({}) };
  it('calculate is a GENERIC tool taking one string', () => {
    const tool = calculateTool();
    expect(tool).toMatchObject({ name: 'calculate', type: 'GENERIC', parameters: { required: ['expression'] } });
    expect(tool.run(state, { expression: '(12.5 + 3) * 2' })).toBe('31.0');
  });
  it('transfer_to_human_agents is GENERIC and terminal', () => {
    const tool = transferTool();
    expect(tool).toMatchObject({ name: 'transfer_to_human_agents', type: 'GENERIC', terminal: true });
    expect(tool.run(state, { summary: 'wants a refund to a closed card' })).toBe('Transfer successful');
  });
});
