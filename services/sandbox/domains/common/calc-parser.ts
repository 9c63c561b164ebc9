// Parses tau2 `calculate` expressions the way CPython 3.11's `eval` does for the characters the tool
// admits: the same grammar and two-pass PEG error reporting, so syntax errors read identically.

import type { CalcBudget } from './calc-budget.js';
import type { Tok } from './calc-tokenizer.js';
import { NEVER_CLOSED, PyMemoryError, PyRecursionError, PySyntaxError, tokenize } from './calc-tokenizer.js';

/** Expression tree; `d` is the node's depth (Python's compiler refuses trees deeper than it can recurse). */
export type CalcNode = { d: number } & (
  | { k: 'int'; v: bigint }
  | { k: 'float'; v: number }
  | { k: 'tuple' }
  | { k: 'ellipsis' }
  | { k: 'unary'; op: '+' | '-'; x: CalcNode }
  | { k: 'bin'; op: '+' | '-' | '*' | '/' | '//' | '**'; l: CalcNode; r: CalcNode }
  | { k: 'call'; fn: CalcNode; arg: { star: '' | '*' | '**'; x: CalcNode } | null }
);

/** CPython's parser stack limit, and what reaching an atom costs on it (measured on 3.11.7). */
const MAX_PARSER_LEVEL = 6000;
const LEVEL_TOP = 24;
const LEVEL_PER_PAREN = 28;
const LEVEL_PER_POWER = 2;
/** The compiler's recursion limit as it shows from a shallow `eval` (RecursionError beyond). */
const MAX_AST_DEPTH = 2991;

type Arg = { star: '' | '*' | '**'; x: CalcNode };

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** Builds a node, recording its depth. */
function mk(node: DistributiveOmit<CalcNode, 'd'>): CalcNode {
  let d = 1;
  if (node.k === 'unary') d = node.x.d + 1;
  else if (node.k === 'bin') d = Math.max(node.l.d, node.r.d) + 1;
  else if (node.k === 'call') d = Math.max(node.fn.d, node.arg?.x.d ?? 0) + 1;
  return { ...node, d } as CalcNode;
}

/**
 * Recursive descent over CPython's PEG rules (the subset these tokens can reach), with packrat memo
 * on the rules CPython memoizes, so the same tokens are fetched and the same errors raised first.
 * The second pass turns on the `invalid_*` rules that produce the special messages.
 */
class Parser {
  private pos = 0;
  private invalid = false;
  private memo = new Map<string, { value: unknown; end: number }>();
  private level = LEVEL_TOP;

  constructor(
    private readonly toks: Tok[],
    private readonly openAtEnd: boolean,
  ) {}

  /** Fetches token i; reaching the end inside parentheses is the tokenizer's "never closed" error. */
  private at(i: number): Tok {
    const t = this.toks[i];
    if (t) return t;
    if (this.openAtEnd) throw new PySyntaxError(NEVER_CLOSED);
    return { kind: 'end', text: '', level: 0 };
  }

  private is(text: string): boolean {
    const t = this.at(this.pos);
    return t.kind === 'op' && t.text === text;
  }

  private eat(text: string): boolean {
    if (!this.is(text)) return false;
    this.pos++;
    return true;
  }

  /** One pass over the input; the tree when it is a complete expression, else null. */
  parse(invalidRules: boolean): CalcNode | null {
    this.pos = 0;
    this.level = LEVEL_TOP;
    this.memo = new Map();
    this.invalid = invalidRules;
    const e = this.expression();
    if (e && this.at(this.pos).kind === 'end') return e;
    return null;
  }

  private memoized<T>(rule: string, fn: () => T | null): T | null {
    const key = `${rule}@${this.pos}`;
    const hit = this.memo.get(key);
    if (hit) {
      this.pos = hit.end;
      return hit.value as T | null;
    }
    const start = this.pos;
    const value = fn();
    if (value === null) this.pos = start;
    this.memo.set(key, { value, end: this.pos });
    return value;
  }

  /** Runs fn with `extra` more parser-stack levels (CPython raises MemoryError past its limit). */
  private deeper<T>(extra: number, fn: () => T): T {
    this.level += extra;
    try {
      if (this.level >= MAX_PARSER_LEVEL) throw new PyMemoryError();
      return fn();
    } finally {
      this.level -= extra;
    }
  }

  private expression(): CalcNode | null {
    return this.memoized('expression', () => {
      if (this.invalid) {
        const start = this.pos;
        // invalid_expression: two expressions side by side inside parentheses.
        if (this.disjunction()) {
          this.invalid = false;
          const b = this.disjunction();
          this.invalid = true;
          if (b && this.at(this.pos - 1).level > 0) throw new PySyntaxError('invalid syntax. Perhaps you forgot a comma?');
        }
        this.pos = start;
      }
      return this.disjunction();
    });
  }

  // disjunction … bitwise_or … sum collapse into one memoized rule: no other operators are admitted.
  private disjunction(): CalcNode | null {
    return this.memoized('sum', () => this.binaryChain(['+', '-'], () => this.term()));
  }

  private term(): CalcNode | null {
    return this.memoized('term', () => this.binaryChain(['*', '/', '//'], () => this.factor()));
  }

  private binaryChain(ops: string[], operand: () => CalcNode | null): CalcNode | null {
    let left = operand();
    if (!left) return null;
    for (;;) {
      const t = this.at(this.pos);
      if (t.kind !== 'op' || !ops.includes(t.text)) return left;
      const mark = this.pos++;
      const right = operand();
      if (!right) {
        this.pos = mark;
        return left;
      }
      left = mk({ k: 'bin', op: t.text as '+', l: left, r: right });
    }
  }

  /**
   * factor: ('+'|'-')* power, where power is primary ['**' factor]. Written as a loop (not CPython's
   * recursion) so that long chains cannot exhaust the JS stack; the memo and fetches are the same.
   */
  private factor(): CalcNode | null {
    return this.memoized('factor', () => {
      const start = this.pos;
      const baseLevel = this.level;
      // Each segment: unary operators, then a primary; segments are joined by '**'.
      const segments: { ops: ('+' | '-')[]; base: CalcNode }[] = [];
      try {
        let beforePow = -1;
        for (;;) {
          const ops: ('+' | '-')[] = [];
          while (this.is('+') || this.is('-')) ops.push(this.at(this.pos++).text as '+' | '-');
          this.level += ops.length;
          if (this.level >= MAX_PARSER_LEVEL) throw new PyMemoryError();
          const base = this.primary();
          if (!base) {
            // A failed exponent leaves `primary` alone, before its '**'.
            if (beforePow >= 0) this.pos = beforePow;
            break;
          }
          segments.push({ ops, base });
          beforePow = this.pos;
          if (!this.eat('**')) break;
          this.level += LEVEL_PER_POWER;
        }
      } finally {
        this.level = baseLevel;
      }
      if (segments.length === 0) {
        this.pos = start;
        return null;
      }
      let node: CalcNode | null = null;
      for (let i = segments.length - 1; i >= 0; i--) {
        const seg = segments[i]!;
        let x: CalcNode = node ? mk({ k: 'bin', op: '**', l: seg.base, r: node }) : seg.base;
        for (let j = seg.ops.length - 1; j >= 0; j--) x = mk({ k: 'unary', op: seg.ops[j]!, x });
        node = x;
      }
      return node;
    });
  }

  private primary(): CalcNode | null {
    return this.memoized('primary', () => {
      let node = this.atom();
      if (!node) return null;
      for (;;) {
        const mark = this.pos;
        // primary '.' NAME: the name check fetches the token after the dot.
        if (this.eat('.')) {
          this.at(this.pos);
          this.pos = mark;
        }
        this.genexp();
        if (this.eat('(')) {
          const arg = this.deeper(LEVEL_PER_PAREN, () => this.arguments());
          if (this.eat(')')) {
            node = mk({ k: 'call', fn: node, arg });
            continue;
          }
        }
        this.pos = mark;
        return node;
      }
    });
  }

  private atom(): CalcNode | null {
    const t = this.at(this.pos);
    if (t.kind === 'num') {
      this.pos++;
      if (t.text.includes('.')) return mk({ k: 'float', v: Number(t.text) });
      return mk({ k: 'int', v: BigInt(t.text) });
    }
    if (t.kind !== 'op') return null;
    if (t.text === '...') {
      this.pos++;
      return mk({ k: 'ellipsis' });
    }
    if (t.text !== '(') return null;
    return this.deeper(LEVEL_PER_PAREN, () => this.tuple() ?? this.group() ?? this.genexp());
  }

  private tuple(): CalcNode | null {
    const start = this.pos++;
    // [star_named_expression ',' …]: the comma can never come, but the attempt fetches tokens.
    this.starNamedExpression();
    this.pos = start + 1;
    if (this.eat(')')) return mk({ k: 'tuple' });
    this.pos = start;
    return null;
  }

  private group(): CalcNode | null {
    const start = this.pos++;
    const inner = this.namedExpression();
    if (inner && this.eat(')')) return inner;
    if (this.invalid) {
      this.pos = start + 1;
      if (this.starredExpression() && this.is(')')) throw new PySyntaxError('cannot use starred expression here');
      this.pos = start + 1;
      if (this.eat('**') && this.expression() && this.is(')')) {
        throw new PySyntaxError('cannot use double starred expression here');
      }
    }
    this.pos = start;
    return null;
  }

  /** genexp never matches (no `for`), but CPython tries it, and its attempts fetch tokens and raise. */
  private genexp(): null {
    const start = this.pos;
    if (!this.eat('(')) return null;
    this.expression();
    if (this.invalid) {
      this.pos = start + 1;
      this.starredExpression();
    }
    this.pos = start;
    return null;
  }

  private namedExpression(): CalcNode | null {
    const start = this.pos;
    if (this.invalid) {
      // invalid_named_expression: `expression ':='`, then `!(tuple | genexp) bitwise_or '='`.
      this.expression();
      this.pos = start;
      const isTuple = this.is('(') && this.tuple() !== null;
      this.pos = start;
      if (!isTuple) {
        this.genexp();
        this.disjunction();
      }
      this.pos = start;
    }
    return this.expression();
  }

  private starNamedExpression(): CalcNode | null {
    const start = this.pos;
    if (this.eat('*')) {
      const x = this.disjunction();
      if (x) return x;
      this.pos = start;
    }
    return this.namedExpression();
  }

  private starredExpression(): CalcNode | null {
    const start = this.pos;
    if (this.eat('*')) {
      const x = this.expression();
      if (x) return x;
    }
    this.pos = start;
    return null;
  }

  /** arguments: args [','] &')' | invalid_arguments. At most one argument fits in this alphabet. */
  private arguments(): Arg | null {
    return this.memoized('arguments', () => {
      const start = this.pos;
      const arg = this.args();
      if (arg && this.is(')')) return arg;
      this.pos = start;
      if (this.invalid) {
        // Every invalid_arguments alternative parses args or an expression, then fails.
        this.args();
        this.pos = start;
        this.expression();
        this.pos = start;
      }
      return null;
    });
  }

  private args(): Arg | null {
    const start = this.pos;
    const starred = this.starredExpression();
    if (starred) return { star: '*', x: starred };
    const plain = this.expression();
    if (plain) return { star: '', x: plain };
    this.pos = start;
    // kwargs: kwarg_or_starred / kwarg_or_double_starred ('**' expression).
    if (this.eat('**')) {
      const x = this.expression();
      if (x) return { star: '**', x };
    }
    this.pos = start;
    return null;
  }
}

/**
 * Parses `src` as CPython's `eval` would (leading spaces stripped). Returns the expression tree, or throws
 * what Python raises for this input: PySyntaxError, PyRecursionError (too deep for the compiler) or
 * PyMemoryError (too deep for the parser), each carrying Python's message; or CalcBudgetError, before
 * parsing, for more tokens than the budget admits.
 */
export function parseCalcExpression(src: string, budget?: CalcBudget): CalcNode {
  const stripped = src.replace(/^ +/, '');
  const { toks, level } = tokenize(stripped);
  budget?.tokens(toks.length);
  const parser = new Parser(toks, level > 0);
  const tree = parser.parse(false);
  if (tree) {
    if (tree.d > MAX_AST_DEPTH) throw new PyRecursionError('maximum recursion depth exceeded during compilation');
    return tree;
  }
  parser.parse(true);
  throw new PySyntaxError('invalid syntax', toks.length === 0 ? 0 : 1);
}
