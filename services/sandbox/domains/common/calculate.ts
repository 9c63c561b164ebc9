// tau2's `calculate` tool (airline and retail): the expression is checked against the admitted
// characters, evaluated with Python 3.11 semantics (no eval), then float(), round(x, 2) and str()'d.

import type { ToolDef } from '../../domain.js';
import { ToolError } from '../../domain.js';
import { pyFloatRepr } from '../../pyjson.js';
import { CalcBudget, type CalcLimits } from './calc-budget.js';
import type { CalcNode } from './calc-parser.js';
import { parseCalcExpression } from './calc-parser.js';
import type { PyValue } from './py-arith.js';
import { binary, toFloat, typeName, unary } from './py-arith.js';
import { pyRound } from './pyround.js';

const ALLOWED = new Set('0123456789+-*/(). ');

/** Python `str(float)`: repr, with `inf`/`nan` spelled as Python does. */
export function pyFloatStr(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';
  return pyFloatRepr(x);
}

/** Python `str()` of a value, as CPython names a callee in call errors. */
function pyValueStr(v: PyValue): string {
  switch (v.t) {
    case 'int':
      return v.v.toString();
    case 'float':
      return pyFloatStr(v.v);
    case 'tuple':
      return '()';
    case 'ellipsis':
      return 'Ellipsis';
    case 'complex': {
      // complex_repr: repr digits without a forced ".0"; the imaginary part always carries a sign.
      const part = (x: number): string => pyFloatStr(x).replace(/\.0$/, '');
      const im = (v.im < 0 || Object.is(v.im, -0) || Number.isNaN(v.im) ? '' : '+') + part(v.im) + 'j';
      if (v.re === 0 && !Object.is(v.re, -0)) return im.replace(/^\+/, '');
      return `(${part(v.re)}${im})`;
    }
  }
}

/** Evaluates the tree left to right as CPython does, charging integer work to `budget`. */
function evaluate(node: CalcNode, budget: CalcBudget): PyValue {
  switch (node.k) {
    case 'int':
      return { t: 'int', v: node.v };
    case 'float':
      return { t: 'float', v: node.v };
    case 'tuple':
      return { t: 'tuple' };
    case 'ellipsis':
      return { t: 'ellipsis' };
    case 'unary':
      return unary(node.op, evaluate(node.x, budget));
    case 'bin': {
      const l = evaluate(node.l, budget);
      return binary(node.op, l, evaluate(node.r, budget), budget);
    }
    case 'call': {
      const fn = evaluate(node.fn, budget);
      if (node.arg) {
        const arg = evaluate(node.arg.x, budget);
        if (node.arg.star === '*' && arg.t !== 'tuple') {
          throw new ToolError(`${pyValueStr(fn)} argument after * must be an iterable, not ${typeName(arg)}`);
        }
        if (node.arg.star === '**') {
          throw new ToolError(`${pyValueStr(fn)} argument after ** must be a mapping, not ${typeName(arg)}`);
        }
      }
      throw new ToolError(`'${typeName(fn)}' object is not callable`);
    }
  }
}

/**
 * tau2's calculate: `str(round(float(eval(expression)), 2))`, restricted to `0-9 + - * / ( ) . space`.
 * Throws ToolError with the message Python gives: `Invalid characters in expression`, a SyntaxError
 * text such as `invalid syntax (<string>, line 1)`, `division by zero`, and so on; or, where Python would
 * compute for seconds or more, `calculation too large: ...` (the `limits`, before the work is done).
 */
export function calculate(expression: string, limits?: CalcLimits): string {
  if (typeof expression !== 'string') throw new ToolError(`'${typeof expression}' object is not iterable`);
  for (const ch of expression) {
    if (!ALLOWED.has(ch)) throw new ToolError('Invalid characters in expression');
  }
  try {
    const budget = new CalcBudget(limits);
    const value = toFloat(evaluate(parseCalcExpression(expression, budget), budget));
    return pyFloatStr(pyRound(value, 2));
  } catch (e) {
    if (e instanceof ToolError) throw e;
    throw new ToolError(e instanceof Error ? e.message : String(e));
  }
}

/** The `calculate` tool definition (GENERIC: it never touches the DB). */
export function calculateTool(): ToolDef {
  return {
    name: 'calculate',
    description:
      'Evaluate an arithmetic expression and return the result rounded to two decimals. ' +
      'Only digits, spaces, parentheses, the decimal point and the operators + - * / are accepted.',
    parameters: {
      type: 'object',
      properties: {
        expression: { type: 'string', description: "The expression to evaluate, for example '(12.5 + 3) * 2'." },
      },
      required: ['expression'],
    },
    type: 'GENERIC',
    run: (_state, args) => calculate(args.expression as string),
  };
}
