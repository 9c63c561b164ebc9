// CPython 3.11's tokenizer for the characters tau2's `calculate` admits, and the Python errors that the
// parse of such an expression can raise (rendered as `str(exc)` shows them).

/** A Python SyntaxError, rendered as `str(exc)`: `<msg> (<string>, line N)`. */
export class PySyntaxError extends Error {
  override name = 'PySyntaxError';
  constructor(msg: string, line = 1) {
    super(`${msg} (<string>, line ${line})`);
  }
}

/** Python's compiler ran out of recursion depth on a deeply nested tree. */
export class PyRecursionError extends Error {
  override name = 'PyRecursionError';
}

/** CPython's parser ran out of stack (MemoryError with an empty message). */
export class PyMemoryError extends Error {
  override name = 'PyMemoryError';
  constructor() {
    super('');
  }
}

export interface Tok {
  kind: 'num' | 'op' | 'end';
  text: string;
  /** Paren depth after the token, as CPython's tokenizer records it. */
  level: number;
}

const MAX_PAREN_LEVEL = 200;
export const NEVER_CLOSED = "'(' was never closed";

/** CPython's tokenizer over `0-9 + - * / ( ) . space`. Throws PySyntaxError for tokenizer errors. */
export function tokenize(src: string): { toks: Tok[]; level: number } {
  const toks: Tok[] = [];
  let level = 0;
  let i = 0;
  const isDigit = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';
  while (i < src.length) {
    const c = src[i]!;
    if (c === ' ') {
      i++;
      continue;
    }
    const start = i;
    if (isDigit(c) || (c === '.' && isDigit(src[i + 1]))) {
      while (isDigit(src[i])) i++;
      const intText = src.slice(start, i);
      if (src[i] === '.') {
        i++;
        while (isDigit(src[i])) i++;
      } else if (/^0+[1-9]/.test(intText)) {
        throw new PySyntaxError(
          'leading zeros in decimal integer literals are not permitted; use an 0o prefix for octal integers',
        );
      }
      toks.push({ kind: 'num', text: src.slice(start, i), level });
      continue;
    }
    let text: string = c;
    if (c === '.' && src.startsWith('...', i)) text = '...';
    else if ((c === '*' || c === '/') && src[i + 1] === c) text = c + c;
    i += text.length;
    if (c === '(') {
      if (level >= MAX_PAREN_LEVEL) throw new PySyntaxError('too many nested parentheses');
      level++;
    } else if (c === ')') {
      if (level === 0) throw new PySyntaxError("unmatched ')'");
      level--;
    }
    toks.push({ kind: 'op', text, level });
  }
  return { toks, level };
}
