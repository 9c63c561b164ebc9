// sameSortedDump decides exactly what comparing two sorted pyDumps texts decides: checked on contexts that
// change a number's text, and on the real retail and airline states of every task's gold replay.

import { describe, expect, it } from 'vitest';
import { describeTau2, tau2DomainDir } from '../../test/fixtures/tau2-data.js';
import { CowStore } from './cow-store.js';
import { loadDomain } from './domains/index.js';
import { goldState } from './evaluate.js';
import { deepFreeze, pyDumps, PyFloat, PyInt, sameSortedDump, type FloatFieldPredicate } from './pyjson.js';
import { loadTasks } from './tasks.js';

// `amount` is a float field only in objects of kind 'f' and in Maps, so one number prints as 1 or 1.0 by
// its parent (for a Map and an object with the same entries, by nothing the texts hold).
const isFloat: FloatFieldPredicate = (key, parent) => key === 'amount' && (parent.kind === 'f' || parent instanceof Map);
const text = (v: unknown) => pyDumps(v, { sortKeys: true, isFloatField: isFloat });

describe('sameSortedDump', () => {
  const shared = deepFreeze({ amount: 1, tags: [1, 2] });
  const cases: [string, unknown, unknown][] = [
    ['identical trees', { a: shared }, { a: shared }],
    ['key order', { a: 1, b: 2 }, { b: 2, a: 1 }],
    ['an unset key against an absent one', { a: 1, b: undefined }, { a: 1 }],
    ['an unset key against null', { a: 1, b: undefined }, { a: 1, b: null }],
    ['one number in an int and a float field', { kind: 'i', amount: 1 }, { kind: 'f', amount: 1 }],
    ['one number in two int fields', { kind: 'i', amount: 1 }, { kind: 'x', amount: 1 }],
    ['one array in an int and a float field', { kind: 'i', amount: [1, 2] }, { kind: 'f', amount: [1, 2] }],
    ['a float field against a PyFloat', { kind: 'f', amount: 1 }, { kind: 'i', amount: new PyFloat(1) }],
    ['a PyInt against a number', { kind: 'i', amount: new PyInt(3) }, { kind: 'i', amount: 3 }],
    ['a Map against an object', new Map<string, unknown>([['b', 1], ['a', 2]]), { a: 2, b: 1 }],
    ['one number in a Map and an object', new Map<string, unknown>([['amount', 1]]), { amount: 1 }],
    ['one array in a Map and an object', new Map<string, unknown>([['amount', [1]]]), { amount: [1] }],
    ['a Map with an extra key', new Map<string, unknown>([['a', 2], ['c', 0]]), { a: 2 }],
    ['a shared object in two contexts', { kind: 'f', x: shared }, { kind: 'i', x: shared }],
    ['an object against an array', { a: {} }, { a: [] }],
    ['nested change', { a: { b: { c: 'x' } } }, { a: { b: { c: 'y' } } }],
    ['strings that escape alike', { a: 'é' }, { a: '\u00e9' }],
    ['array lengths', [1, 2], [1, 2, 3]],
  ];
  for (const [name, a, b] of cases) {
    it(`agrees with the texts: ${name}`, () => {
      expect(sameSortedDump(a, b, isFloat)).toBe(text(a) === text(b));
      expect(sameSortedDump(b, a, isFloat)).toBe(text(a) === text(b));
    });
  }

  it('finds a change below a shared copy-on-write table without walking the rest', () => {
    const base = deepFreeze({ orders: Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`#${i}`, { status: 'pending', kind: 'f', amount: i }])) });
    const a = new CowStore(base);
    const b = new CowStore(base);
    a.edit('orders', '#7').status = 'cancelled';
    expect(sameSortedDump(a.root, base, isFloat)).toBe(false);
    b.edit('orders', '#7').status = 'cancelled';
    expect(sameSortedDump(a.root, b.root, isFloat)).toBe(true);
    b.edit('orders', '#1999').amount = 1999.5;
    expect(sameSortedDump(a.root, b.root, isFloat)).toBe(false);
  });
});

for (const name of ['retail', 'airline']) {
  describeTau2(name, `sameSortedDump on ${name}'s gold states`, () => {
    it('agrees with comparing the serializations for every pair of tasks\' gold states', () => {
      const domain = loadDomain(name, tau2DomainDir(name));
      const tasks = loadTasks(`${tau2DomainDir(name)}/tasks.json`);
      const states = [{ db: domain.initialDb }, ...tasks.slice(0, 40).map((t) => goldState(domain, t))];
      const texts = states.map((s) => pyDumps(s.db, { sortKeys: true, isFloatField: domain.isFloatField }));
      let equalPairs = 0;
      for (let i = 0; i < states.length; i++) {
        for (let j = 0; j < states.length; j++) {
          const same = texts[i] === texts[j];
          if (same && i !== j) equalPairs++;
          expect(sameSortedDump(states[i]!.db, states[j]!.db, domain.isFloatField), `${i} vs ${j}`).toBe(same);
        }
      }
      expect(equalPairs).toBeGreaterThan(0); // tasks whose gold actions only read share the initial state
    });
  });
}
