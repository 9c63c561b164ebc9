// Test support: the subset of Go text/template + Helm functions the Parley chart uses (fields, variables,
// if/else/with/range/define, pipelines, include, toYaml, nindent, quote, default, printf, …), so chart
// tests render templates without a helm binary. Anything outside the subset throws, naming it.

import { stringify } from 'yaml';

type Node =
  | { t: 'text'; s: string }
  | { t: 'out'; p: Pipe; decl?: { name: string; define: boolean } }
  | { t: 'if'; branches: { cond: Pipe; body: Node[] }[]; else?: Node[] }
  | { t: 'with'; p: Pipe; body: Node[]; else?: Node[] }
  | { t: 'range'; p: Pipe; vars: string[]; body: Node[]; else?: Node[] };
type Arg = { k: 'field'; base: 'dot' | string; path: string[] } | { k: 'lit'; v: unknown } | { k: 'fn'; name: string } | { k: 'sub'; p: Pipe };
type Cmd = Arg[];
type Pipe = Cmd[];
type Scope = { dot: unknown; root: unknown; vars: Map<string, unknown>[] };

export class TemplateError extends Error {}

/** Go's %v for a float64 (what Helm prints for numbers from values files). */
function goNumber(n: number): string {
  if (!Number.isFinite(n)) return n > 0 ? '+Inf' : n < 0 ? '-Inf' : 'NaN';
  const exp = n === 0 ? 0 : Math.floor(Math.log10(Math.abs(n)));
  // strconv.FormatFloat(f, 'g', -1, 64): exponent form below 1e-4 and from 1e6 up.
  if (exp < -4 || exp >= 6) {
    const [m, e] = n.toExponential().split('e');
    const ee = Number(e);
    return `${m}e${ee < 0 ? '-' : '+'}${String(Math.abs(ee)).padStart(2, '0')}`;
  }
  return String(n);
}

function print(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'number') return goNumber(v);
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `[${v.map(print).join(' ')}]`;
  return `map[${Object.keys(v as object).sort().map((k) => `${k}:${print((v as Record<string, unknown>)[k])}`).join(' ')}]`;
}

function truthy(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v as object).length > 0;
  return true;
}

/** sigs.k8s.io/yaml output as Helm's toYaml writes it: sorted keys, unindented sequences, no trailing newline. */
export function toYaml(v: unknown): string {
  if (v === undefined || v === null) return 'null';
  return stringify(v, { sortMapEntries: true, indentSeq: false, lineWidth: 0 }).replace(/\n$/, '');
}

const indent = (n: number, s: string) => s.split('\n').map((l) => ' '.repeat(n) + l).join('\n');

/** Splits source into text and action pieces, applying {{- and -}} trimming. */
function lex(src: string): ({ text: string } | { action: string })[] {
  const out: ({ text: string } | { action: string })[] = [];
  let i = 0;
  let trimNext = false;
  while (i < src.length) {
    const open = src.indexOf('{{', i);
    let text = open < 0 ? src.slice(i) : src.slice(i, open);
    if (trimNext) text = text.replace(/^\s+/, '');
    if (open < 0) {
      out.push({ text });
      break;
    }
    const trimPrev = src[open + 2] === '-' && /\s/.test(src[open + 3] ?? '');
    if (trimPrev) text = text.replace(/\s+$/, '');
    out.push({ text });
    const close = src.indexOf('}}', open);
    if (close < 0) throw new TemplateError(`unclosed action at offset ${open}`);
    let body = src.slice(open + 2 + (trimPrev ? 1 : 0), close);
    trimNext = /\s-$/.test(body);
    if (trimNext) body = body.slice(0, -1);
    body = body.trim();
    if (!(body.startsWith('/*') && body.endsWith('*/'))) out.push({ action: body });
    i = close + 2;
  }
  return out;
}

function splitWords(action: string): string[] {
  const words: string[] = [];
  const re = /\s*("(?:[^"\\]|\\.)*"|`[^`]*`|:=|\||\(|\)|[^\s|()]+)/gy;
  let end = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(action))) {
    words.push(m[1]!);
    end = re.lastIndex;
  }
  if (action.slice(end).trim()) throw new TemplateError(`cannot read action {{${action}}}`);
  return words;
}

function parsePipe(words: string[], pos = { i: 0 }, inParens = false): Pipe {
  const pipe: Pipe = [];
  let cmd: Cmd = [];
  while (pos.i < words.length) {
    const w = words[pos.i++]!;
    if (w === '|') {
      pipe.push(cmd);
      cmd = [];
    } else if (w === '(') {
      cmd.push({ k: 'sub', p: parsePipe(words, pos, true) });
    } else if (w === ')') {
      if (!inParens) throw new TemplateError('unexpected )');
      break;
    } else if (w.startsWith('"')) cmd.push({ k: 'lit', v: JSON.parse(w) });
    else if (w.startsWith('`')) cmd.push({ k: 'lit', v: w.slice(1, -1) });
    else if (/^-?\d+(\.\d+)?$/.test(w)) cmd.push({ k: 'lit', v: Number(w) });
    else if (w === 'true' || w === 'false') cmd.push({ k: 'lit', v: w === 'true' });
    else if (w === 'nil') cmd.push({ k: 'lit', v: null });
    else if (w === '.') cmd.push({ k: 'field', base: 'dot', path: [] });
    else if (w.startsWith('.')) cmd.push({ k: 'field', base: 'dot', path: w.slice(1).split('.') });
    else if (w.startsWith('$')) {
      const [name, ...path] = w.split('.');
      cmd.push({ k: 'field', base: name!, path });
    } else if (/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(w)) cmd.push({ k: 'fn', name: w });
    else throw new TemplateError(`unsupported token '${w}'`);
  }
  if (cmd.length) pipe.push(cmd);
  return pipe;
}

type Parsed = { nodes: Node[]; defines: Map<string, Node[]> };

function parse(src: string): Parsed {
  const defines = new Map<string, Node[]>();
  const pieces = lex(src);
  let p = 0;
  const closed = (b: { nodes: Node[]; end: string }, what: string) => {
    if (!b.end) throw new TemplateError(`{{${what}}} has no {{end}}`);
    return b;
  };
  const block = (): { nodes: Node[]; end: string } => {
    const nodes: Node[] = [];
    while (p < pieces.length) {
      const piece = pieces[p++]!;
      if ('text' in piece) {
        if (piece.text) nodes.push({ t: 'text', s: piece.text });
        continue;
      }
      const a = piece.action;
      const [kw, ...rest] = splitWords(a);
      if (kw === 'end' || kw === 'else') return { nodes, end: a };
      if (kw === 'if') {
        const node: Extract<Node, { t: 'if' }> = { t: 'if', branches: [] };
        let cond = parsePipe(rest);
        for (;;) {
          const b = closed(block(), `if ${rest.join(' ')}`);
          node.branches.push({ cond, body: b.nodes });
          if (b.end === 'end') break;
          const words = splitWords(b.end);
          if (words[1] === 'if') {
            cond = parsePipe(words.slice(2));
            continue;
          }
          const e = closed(block(), 'else');
          node.else = e.nodes;
          break;
        }
        nodes.push(node);
      } else if (kw === 'with' || kw === 'range') {
        let vars: string[] = [];
        let words = rest;
        const decl = words.indexOf(':=');
        if (kw === 'range' && decl > 0) {
          vars = words.slice(0, decl).join(' ').split(',').map((v) => v.trim()).filter(Boolean);
          words = words.slice(decl + 1);
        }
        const b = closed(block(), kw!);
        const node = kw === 'with' ? ({ t: 'with', p: parsePipe(words), body: b.nodes } as Node) : ({ t: 'range', p: parsePipe(words), vars, body: b.nodes } as Node);
        if (b.end !== 'end') (node as { else?: Node[] }).else = closed(block(), 'else').nodes;
        nodes.push(node);
      } else if (kw === 'define') {
        const name = JSON.parse(rest[0]!);
        defines.set(name, closed(block(), `define ${name}`).nodes);
      } else if (kw?.startsWith('$') && (rest[0] === ':=' || rest[0] === '=')) {
        nodes.push({ t: 'out', p: parsePipe(rest.slice(1)), decl: { name: kw, define: rest[0] === ':=' } });
      } else if (['template', 'block', 'break', 'continue'].includes(kw ?? '')) {
        throw new TemplateError(`'${kw}' is outside the supported subset`);
      } else {
        nodes.push({ t: 'out', p: parsePipe([kw!, ...rest]) });
      }
    }
    return { nodes, end: '' };
  };
  const { nodes, end } = block();
  if (end) throw new TemplateError(`unexpected {{${end}}}`);
  return { nodes, defines };
}

export interface RenderContext {
  /** Named templates from every file (_helpers.tpl). */
  defines: Map<string, Node[]>;
  /** `.Files.Get` reads through this. */
  readFile: (path: string) => string;
}

function lookup(v: unknown, path: string[]): unknown {
  let cur = v;
  for (const key of path) {
    if (cur === undefined || cur === null) return undefined;
    if (typeof cur !== 'object') throw new TemplateError(`can't evaluate field ${key} in type ${typeof cur}`);
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

function call(name: string, args: unknown[], ctx: RenderContext): unknown {
  const s = (v: unknown) => print(v);
  switch (name) {
    case 'include': {
      const body = ctx.defines.get(String(args[0]));
      if (!body) throw new TemplateError(`no template named "${String(args[0])}"`);
      return run(body, ctx, { dot: args[1], root: args[1], vars: [new Map()] });
    }
    case 'toYaml': return toYaml(args[0]);
    case 'toJson': return JSON.stringify(args[0] ?? null);
    case 'nindent': return '\n' + indent(Number(args[0]), s(args[1]));
    case 'indent': return indent(Number(args[0]), s(args[1]));
    case 'quote': return args.map((a) => JSON.stringify(s(a))).join(' ');
    case 'squote': return args.map((a) => `'${s(a)}'`).join(' ');
    case 'default': return truthy(args[1]) ? args[1] : args[0];
    case 'empty': return !truthy(args[0]);
    case 'required': if (!truthy(args[1])) throw new TemplateError(String(args[0])); return args[1];
    case 'trunc': return s(args[1]).slice(0, Number(args[0]));
    case 'trimSuffix': return s(args[1]).endsWith(s(args[0])) ? s(args[1]).slice(0, -s(args[0]).length || undefined) : s(args[1]);
    case 'contains': return s(args[1]).includes(s(args[0]));
    case 'lower': return s(args[0]).toLowerCase();
    case 'printf': {
      let i = 1;
      return s(args[0]).replace(/%[sdv%]/g, (m) => (m === '%%' ? '%' : s(args[i++])));
    }
    case 'list': return args;
    case 'eq': return args.slice(1).some((a) => a === args[0]);
    case 'ne': return args[0] !== args[1];
    case 'not': return !truthy(args[0]);
    case 'and': return args.reduce((a, b) => (truthy(a) ? b : a));
    case 'or': return args.reduce((a, b) => (truthy(a) ? a : b));
    default: throw new TemplateError(`function "${name}" is outside the supported subset`);
  }
}

function evalPipe(pipe: Pipe, ctx: RenderContext, scope: Scope): unknown {
  let prev: unknown;
  pipe.forEach((cmd, i) => {
    const [head, ...rest] = cmd;
    if (!head) throw new TemplateError('empty command');
    const args = rest.map((a) => evalArg(a, ctx, scope));
    if (i > 0) args.push(prev);
    if (head.k === 'fn') prev = call(head.name, args, ctx);
    else if (head.k === 'field' && head.path.join('.').endsWith('Files.Get')) prev = ctx.readFile(String(args[0]));
    else if (args.length) throw new TemplateError('only functions take arguments');
    else prev = evalArg(head, ctx, scope);
  });
  return prev;
}

function evalArg(a: Arg, ctx: RenderContext, scope: Scope): unknown {
  switch (a.k) {
    case 'lit': return a.v;
    case 'sub': return evalPipe(a.p, ctx, scope);
    case 'fn': return call(a.name, [], ctx);
    case 'field': {
      if (a.base === 'dot') return lookup(scope.dot, a.path);
      if (a.base === '$') return lookup(scope.root, a.path);
      for (let i = scope.vars.length - 1; i >= 0; i--) if (scope.vars[i]!.has(a.base)) return lookup(scope.vars[i]!.get(a.base), a.path);
      throw new TemplateError(`undefined variable "${a.base}"`);
    }
  }
}

function run(nodes: Node[], ctx: RenderContext, scope: Scope): string {
  let out = '';
  const inner = (dot: unknown) => ({ ...scope, dot, vars: [...scope.vars, new Map<string, unknown>()] });
  for (const n of nodes) {
    if (n.t === 'text') out += n.s;
    else if (n.t === 'out') {
      const v = evalPipe(n.p, ctx, scope);
      if (!n.decl) out += print(v);
      else if (n.decl.define) scope.vars[scope.vars.length - 1]!.set(n.decl.name, v);
      else {
        const frame = [...scope.vars].reverse().find((f) => f.has(n.decl!.name));
        if (!frame) throw new TemplateError(`undefined variable "${n.decl.name}"`);
        frame.set(n.decl.name, v);
      }
    } else if (n.t === 'if') {
      const hit = n.branches.find((b) => truthy(evalPipe(b.cond, ctx, scope)));
      out += hit ? run(hit.body, ctx, inner(scope.dot)) : n.else ? run(n.else, ctx, inner(scope.dot)) : '';
    } else if (n.t === 'with') {
      const v = evalPipe(n.p, ctx, scope);
      out += truthy(v) ? run(n.body, ctx, inner(v)) : n.else ? run(n.else, ctx, inner(scope.dot)) : '';
    } else {
      const v = evalPipe(n.p, ctx, scope);
      const entries: [unknown, unknown][] = Array.isArray(v) ? v.map((x, i) => [i, x]) : v && typeof v === 'object' ? Object.keys(v).sort().map((k) => [k, (v as Record<string, unknown>)[k]]) : [];
      if (!entries.length && n.else) out += run(n.else, ctx, inner(scope.dot));
      for (const [k, x] of entries) {
        const sc = inner(x);
        const frame = sc.vars[sc.vars.length - 1]!;
        if (n.vars.length === 1) frame.set(n.vars[0]!, x);
        if (n.vars.length === 2) {
          frame.set(n.vars[0]!, k);
          frame.set(n.vars[1]!, x);
        }
        out += run(n.body, ctx, sc);
      }
    }
  }
  return out;
}

/** Collects the `define`d templates of a file (helpers). Throws TemplateError on syntax outside the subset. */
export function collectDefines(src: string, into: Map<string, Node[]>): void {
  for (const [k, v] of parse(src).defines) into.set(k, v);
}

/** Renders `src` with `data` as `.` and `$`. Throws TemplateError naming what is unsupported or missing. */
export function renderTemplate(src: string, data: unknown, ctx: RenderContext): string {
  const parsed = parse(src);
  for (const [k, v] of parsed.defines) ctx.defines.set(k, v);
  return run(parsed.nodes, ctx, { dot: data, root: data, vars: [new Map()] });
}
