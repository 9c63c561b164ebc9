// Whole-number floats in tool arguments (`50.0`, `5e1`) as tau2 receives them: json.loads makes them Python
// floats, the tools run, and Evaluate compares them with Python `==` (50.0 == 50). Issue #23 item 3.

import { beforeAll, describe, expect, it } from 'vitest';
import { describeTau2, tau2DataDir } from '../../test/fixtures/tau2-data.js';
import { Registry } from '../core/metrics.js';
import { Role } from '../core/gen/parley/v1/chat_pb.js';
import { Termination } from '../core/gen/parley/v1/sandbox_pb.js';
import type { ToolDef } from './domain.js';
import { PyFloat, parsePyJson, pyDumps, pyStr } from './pyjson.js';
import { evaluateEpisode } from './evaluate.js';
import { Environment } from './environment.js';
import { loadDomains, resolveSandboxConfig, SandboxService, type LoadedDomain } from './index.js';

describe('parsePyJson reads numbers as json.loads does', () => {
  it('keeps integral floats as floats and ints as ints', () => {
    const v = parsePyJson('{"a": 50.0, "b": 5e1, "c": 5E+1, "d": 500e-1, "e": 50, "f": -0.0, "g": 0.5, "h": [1.0, 2]}') as Record<string, unknown>;
    // Python: str() of each, as tau2 would print it.
    expect(['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((k) => pyStr(v[k]))).toEqual(['50.0', '50.0', '50.0', '50.0', '50', '-0.0', '0.5']);
    expect(v.a).toBeInstanceOf(PyFloat);
    expect(v.e).toBe(50);
    expect(pyDumps(v.h)).toBe('[1.0, 2]');
  });

  it('accepts what Python accepts beyond JSON.parse', () => {
    expect(parsePyJson('[NaN, Infinity, -Infinity]')).toEqual([NaN, Infinity, -Infinity]);
    expect(parsePyJson('{"x": 1.0, "x": 2}')).toEqual({ x: 2 });
    const proto = parsePyJson('{"__proto__": 1.0}') as Record<string, unknown>;
    expect(Object.keys(proto)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(proto)).toBe(Object.prototype);
  });

  it('decodes strings exactly, including what looks like a number or a marker', () => {
    expect(parsePyJson('{"s": "1.0 \\u0000pyfloat:0", "t": "\\ud83d\\ude00\\n\\/"}')).toEqual({ s: '1.0 \u0000pyfloat:0', t: '\u{1f600}\n/' });
  });

  it('refuses what Python refuses, with a SyntaxError', () => {
    for (const bad of ['{"a": 1.}', '{"a": 01.0}', '{"a": .5}', '{"a": 1.0,}', '[1.0', '"a\tb" ', '{"a": 1e}', '1.0 2', '{a: 1.0}', "{'a': 1.0}", '[+1.0]', '']) {
      expect(() => parsePyJson(bad), bad).toThrow(SyntaxError);
    }
  });
});

/** Every numeric field a tool's JSON schema declares, as paths ("payment_methods[].amount"). */
function numericFields(tool: ToolDef): string[] {
  const out: string[] = [];
  const walk = (schema: any, path: string) => {
    if (!schema || typeof schema !== 'object') return;
    const types = [schema.type].flat();
    if (types.includes('integer') || types.includes('number')) out.push(path);
    for (const [k, s] of Object.entries<any>(schema.properties ?? {})) walk(s, path ? `${path}.${k}` : k);
    if (schema.items) walk(schema.items, `${path}[]`);
    for (const alt of [...(schema.anyOf ?? []), ...(schema.oneOf ?? [])]) walk(alt, path);
  };
  walk(tool.parameters, '');
  return out;
}

/** The JSON text of `args` with every number written as a float literal (`50` → `50.0` or `5e1`). */
function withFloatLiterals(args: unknown, exponent: boolean): string {
  return JSON.stringify(args).replace(/(?<=[:\[,]\s*)(-?\d+)(?=[,}\]])/g, (n) => (exponent ? `${n}e0` : `${n}.0`));
}

describeTau2('airline', 'whole-number float arguments through the sandbox', () => {
  let domains: Map<string, LoadedDomain>;
  let sandbox: SandboxService;
  const mia = 'mia_li_3668';
  const booking = {
    user_id: mia,
    origin: 'JFK',
    destination: 'SEA',
    flight_type: 'one_way',
    cabin: 'economy',
    flights: [
      { flight_number: 'HAT136', date: '2024-05-20' },
      { flight_number: 'HAT039', date: '2024-05-20' },
    ],
    passengers: [{ first_name: 'Mia', last_name: 'Li', dob: '1990-04-05' }],
    payment_methods: [{ payment_id: 'credit_card_4421486', amount: 255 }],
    total_baggages: 0,
    nonfree_baggages: 0,
    insurance: 'no',
  };
  // One call per airline tool with a numeric argument, covering every numeric field.
  const calls: Record<string, Record<string, unknown>> = {
    book_reservation: booking,
    update_reservation_baggages: { reservation_id: 'AIXC49', total_baggages: 1, nonfree_baggages: 1, payment_id: 'credit_card_4421486' },
    send_certificate: { user_id: mia, amount: 50 },
  };

  beforeAll(() => {
    const cfg = resolveSandboxConfig({ dataDir: tau2DataDir(), domains: ['airline', 'retail'], metricsPort: -1 });
    domains = loadDomains(cfg);
    sandbox = new SandboxService(cfg, domains, new Registry());
  });

  const run = (tool: string, argumentsJson: string) => {
    const { sessionId } = sandbox.impl.openSession({ domain: 'airline', taskId: '', sessionId: '' });
    return sandbox.impl.call({ sessionId, toolName: tool, argumentsJson, callId: 'c1' });
  };

  it('covers every numeric argument of the airline and retail tools', () => {
    const fields = (d: string) => domains.get(d)!.domain.tools.flatMap((t) => numericFields(t).map((f) => `${t.name}:${f}`)).sort();
    // Retail's tools take ids, strings and lists of ids only.
    expect(fields('retail')).toEqual([]);
    expect(fields('airline')).toEqual([
      'book_reservation:nonfree_baggages',
      'book_reservation:payment_methods[].amount',
      'book_reservation:total_baggages',
      'send_certificate:amount',
      'update_reservation_baggages:nonfree_baggages',
      'update_reservation_baggages:total_baggages',
    ]);
    for (const f of fields('airline')) expect(Object.keys(calls)).toContain(f.split(':')[0]);
  });

  for (const exponent of [false, true]) {
    it(`runs each numeric-argument airline tool with ${exponent ? '5e1-style' : '50.0-style'} literals as tau2 does`, () => {
      const text = withFloatLiterals(calls.book_reservation, exponent);
      expect(text).toContain(exponent ? '"amount":255e0' : '"amount":255.0');
      // pydantic coerces the whole floats of a new Reservation to ints: the same booking as with ints.
      const asFloat = run('book_reservation', text);
      expect(asFloat.error).toBe(false);
      expect(asFloat.output).toBe(run('book_reservation', JSON.stringify(calls.book_reservation)).output);
      // update_reservation_baggages assigns the counts raw: a float stays a float.
      const bags = run('update_reservation_baggages', withFloatLiterals(calls.update_reservation_baggages, exponent));
      expect(bags.error).toBe(false);
      expect(bags.output).toContain('"total_baggages": 1.0, "nonfree_baggages": 1.0,');
      // send_certificate prints the amount with str(): 50.0.
      expect(run('send_certificate', withFloatLiterals(calls.send_certificate, exponent)).output).toBe(
        `Certificate certificate_3221322 added to user ${mia} with amount 50.0.`,
      );
    });
  }

  it('scores a gold action written with float literals as matching (Python ==), not as unparseable', () => {
    const d = domains.get('airline')!;
    const task = d.tasks.get('20')!;
    const gold = task.evaluation_criteria!.actions!.find((a) => a.name === 'book_reservation')!;
    const env = new Environment(d.domain);
    env.applyInitialState(task);
    const argumentsJson = withFloatLiterals(gold.arguments, false);
    expect(argumentsJson).toMatch(/"amount":\d+\.0/);
    const out = env.call(gold.name, parsePyJson(argumentsJson));
    expect(out.error).toBe(false);
    const messages = [{ role: 'assistant' as const, content: '', toolCalls: [{ name: gold.name, argumentsJson }] }];
    const r = evaluateEpisode(env, { ...task, evaluation_criteria: { ...task.evaluation_criteria!, reward_basis: ['DB', 'ACTION'] } }, messages, true);
    expect(r.components.find((c) => c.name === 'ACTION')!.value).toBe(1);
    expect(r.components.find((c) => c.name === 'DB')!.value).toBe(1);
    expect(r.reward).toBe(1);
  });

  it('answers Evaluate through the service with the same match', () => {
    const { sessionId } = sandbox.impl.openSession({ domain: 'airline', taskId: '20', sessionId: '' });
    const gold = domains.get('airline')!.tasks.get('20')!.evaluation_criteria!.actions!.find((a) => a.name === 'book_reservation')!;
    const argumentsJson = withFloatLiterals(gold.arguments, true);
    expect(sandbox.impl.call({ sessionId, toolName: gold.name, argumentsJson, callId: 'c1' }).error).toBe(false);
    const r = sandbox.impl.evaluate({
      sessionId,
      taskId: '20',
      termination: Termination.AGENT_STOP,
      messages: [{ role: Role.ASSISTANT, content: '', toolCalls: [{ name: gold.name, argumentsJson, id: 'c1' }] } as never],
    });
    expect(r.components.find((c) => c.name === 'ACTION')!.value).toBe(1);
    expect(r.components.find((c) => c.name === 'DB')!.value).toBe(1);
  });
});
