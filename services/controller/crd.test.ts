// CRD schema generation: zod's JSON Schema becomes a structural schema (int-or-string for quantities,
// preserve-unknown-fields for open maps), unsupported unions fail naming the path, and the config
// and spec checks name the field at fault.

import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { resolveControllerConfig } from './config.js';
import { specSchema } from './crd.js';
import { checkRun } from './spec-validation.js';
import { toStructural } from './structural-schema.js';
import type { TrainingRun } from './training-run.js';

describe('toStructural', () => {
  it('types every node, turns string|number into int-or-string and open maps into preserve-unknown-fields', () => {
    const s = toStructural(z.toJSONSchema(z.object({ q: z.union([z.string().regex(/^\d+$/), z.number().min(0)]), any: z.record(z.string(), z.unknown()), n: z.number().int() }), { target: 'openapi-3.0' }));
    expect(s.properties).toEqual({
      q: { 'x-kubernetes-int-or-string': true, anyOf: [{ type: 'integer' }, { type: 'string' }], pattern: '^\\d+$', minimum: 0 },
      any: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
      n: { type: 'integer' },
    });
  });

  it('refuses unions Kubernetes cannot express, naming the path', () => {
    const json = z.toJSONSchema(z.object({ a: z.object({ b: z.union([z.boolean(), z.string()]) }) }), { target: 'openapi-3.0' });
    expect(() => toStructural(json)).toThrow(/spec\.a\.b: a union/);
  });

  it('leaves spec.name optional (it is the object name)', () => {
    expect(specSchema().required).toEqual(['data']);
  });
});

describe('checks that name the field', () => {
  const run = (spec: object, name = 'r1'): TrainingRun => ({ apiVersion: 'parley.dev/v1alpha1', kind: 'TrainingRun', metadata: { name }, spec: spec as TrainingRun['spec'] });
  const config = resolveControllerConfig({}, {});

  it('accepts a minimal spec and rejects mismatched names and LLM users without a model', () => {
    expect(checkRun(run({ data: { domain: 'local' } }), config).ok).toBe(true);
    expect(checkRun(run({ model: { name: 'Qwen/Qwen3-8B' }, data: { domain: 'mock' } }), config).ok).toBe(true);
    // The builtin model's vocabulary is generated for the local domain only.
    expect(checkRun(run({ data: { domain: 'mock' } }), config)).toMatchObject({ ok: false, message: expect.stringContaining('spec.data.domain') });
    expect(checkRun(run({ name: 'other', data: { domain: 'mock' } }), config)).toMatchObject({ ok: false, message: expect.stringContaining('spec.name') });
    expect(checkRun(run({ data: { domain: 'mock' }, userSimulator: { mode: 'llm' } }), config)).toMatchObject({ ok: false, message: expect.stringContaining('spec.userSimulator.model') });
    expect(checkRun(run({ data: { domain: 'mock' } }, 'a'.repeat(41)), config)).toMatchObject({ ok: false, reason: 'InvalidName' });
  });

  it('fails controller config at boot naming the field', () => {
    expect(() => resolveControllerConfig({ workers: 0 }, {})).toThrow(/workers/);
    expect(() => resolveControllerConfig({ renewDeadlineMs: 20_000 }, {})).toThrow(/renewDeadlineMs/);
    expect(() => resolveControllerConfig({ busUrlSecret: 'no-key' }, {})).toThrow(/busUrlSecret/);
    expect(resolveControllerConfig({}, { PARLEY_WORKERS: '4', POD_NAMESPACE: 'ops' })).toMatchObject({ workers: 4, podNamespace: 'ops' });
  });
});
