// One configuration contract from run spec to engine: every k8s/examples run renders a learner.yaml whose
// engineConfigJson the real engine's parse_config accepts, the local demo's engine config is the one it
// always was, and a spec the engine would refuse is refused first by RunSpecSchema and the CRD schema.

import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { resolveControllerConfig } from '../services/controller/config.js';
import { trainingRunCrd } from '../services/controller/crd.js';
import { engineConfig } from '../services/controller/local/setup.js';
import { RunSpecSchema } from '../services/controller/run-spec.js';
import { checkRun } from '../services/controller/spec-validation.js';
import { enginePython } from '../services/learner/index.js';
import { crdSchemaForAjv } from '../services/controller/testing/crd-ajv.js';
import { REPO, exampleRun } from '../services/controller/testing/harness.js';

type Schema = Record<string, any>;
type Parsed = { ok: true; config: Record<string, unknown> } | { ok: false; error: string };

const PARSE = `
import json, sys
from parley_engine.config import parse_config
from parley_engine.errors import EngineError
out = []
for text in json.load(sys.stdin):
    try:
        out.append({"ok": True, "config": parse_config(text)[0].to_json()})
    except EngineError as e:
        out.append({"ok": False, "error": e.message})
print(json.dumps(out))
`;

/** The real engine's parse_config on each config_json text (one interpreter for all). */
function engineParse(texts: string[]): Parsed[] {
  const stdout = execFileSync(enginePython(), ['-c', PARSE], {
    input: JSON.stringify(texts),
    env: { ...process.env, PYTHONPATH: join(REPO, 'services/learner/engine') },
    encoding: 'utf8',
  });
  return JSON.parse(stdout) as Parsed[];
}

const EXAMPLES = readdirSync(join(REPO, 'k8s/examples')).filter((f) => f.endsWith('.yaml')).map((f) => f.replace(/\.yaml$/, ''));
const config = resolveControllerConfig({ sharedVolumeClaim: 'parley-data' }, {});
const root = (trainingRunCrd() as Schema).spec.versions[0].schema.openAPIV3Schema;
const ajv = new Ajv({ allErrors: true, strict: false });
const validateRun = ajv.compile(crdSchemaForAjv(root, { unknownFields: 'reject' }));

/** The engineConfigJson of the learner.yaml the controller renders for a run. */
function renderedEngineConfig(name: string, edit?: (spec: Schema) => void): string {
  const check = checkRun(exampleRun(name, (r) => edit?.(r.spec as Schema)), config);
  if (!check.ok) throw new Error(check.message);
  return (parse(check.rendered.data['learner.yaml']!) as { engineConfigJson: string }).engineConfigJson;
}

describe('the engine configuration contract', () => {
  it('renders every k8s/examples run into an engine config the real engine accepts', () => {
    expect(EXAMPLES.length).toBeGreaterThanOrEqual(3);
    const texts = EXAMPLES.map((name) => renderedEngineConfig(name));
    const parsed = engineParse(texts);
    parsed.forEach((p, i) => expect(p, `${EXAMPLES[i]}: ${texts[i]}`).toMatchObject({ ok: true }));
    const byName = Object.fromEntries(EXAMPLES.map((n, i) => [n, (parsed[i] as { config: Schema }).config]));
    expect(byName['cpu-small']).toMatchObject({ layers: 2, d_model: 128, heads: 4 });
    expect(byName['tau2-retail-qwen3-8b']).toMatchObject({ dtype: 'bfloat16', gradient_checkpointing: true, lora: { r: 32, alpha: 64 } });
    // The builtin model's vocabulary is the tokenizer's, read by the learner from its model folder at start.
    expect(JSON.parse(texts[EXAMPLES.indexOf('cpu-small')]!)).not.toHaveProperty('vocab_size');
  });

  it('gives the local demo the engine config it had before the contract', () => {
    const spec = RunSpecSchema.parse(parse(readFileSync(join(REPO, 'examples/local/demo.yaml'), 'utf8')));
    const vocabSize = 1234;
    const before = { layers: 2, d_model: 128, heads: 4, lr: 3e-4, positions: 'alibi', copy_head: true, max_len: 512, vocab_size: vocabSize, seed: 1 };
    const now = engineConfig(spec, vocabSize);
    const [a, b] = engineParse([JSON.stringify(before), JSON.stringify(now)]);
    expect(a).toMatchObject({ ok: true });
    expect(b).toEqual(a);
  });

  it('refuses an unknown engine field in RunSpecSchema and the CRD schema, naming model.engine', () => {
    const run = exampleRun('cpu-small', (r) => Object.assign((r.spec as Schema).model.engine, { bogus: 1 }));
    const check = checkRun(run, config);
    expect(check).toMatchObject({ ok: false, reason: 'InvalidSpec' });
    expect(!check.ok && check.message).toMatch(/spec\.model\.engine: .*bogus/);
    expect(validateRun(run)).toBe(false);
    expect(ajv.errorsText(validateRun.errors)).toMatch(/spec\/model\/engine must NOT have additional properties/);
  });

  it.each([
    ['a wrong type', { layers: 'two' }, /model\/engine\/layers must be integer/],
    ['a value out of range', { heads: 0 }, /model\/engine\/heads must be >= 1/],
    ['an unknown choice', { positions: 'rope' }, /model\/engine\/positions must be equal to one of/],
  ])('refuses %s at apply time (CRD schema) and in RunSpecSchema', (_, engine, crdError) => {
    const run = exampleRun('cpu-small', (r) => Object.assign((r.spec as Schema).model.engine, engine));
    expect(validateRun(run)).toBe(false);
    expect(ajv.errorsText(validateRun.errors)).toMatch(crdError);
    const check = checkRun(run, config);
    expect(!check.ok && check.message).toMatch(new RegExp(`spec\\.model\\.engine\\.${Object.keys(engine)[0]}`));
  });

  it('checks the cross-field rule the engine checks (d_model divisible by heads) as an invalid spec', () => {
    const run = exampleRun('cpu-small', (r) => Object.assign((r.spec as Schema).model.engine, { dModel: 130, heads: 4 }));
    expect(validateRun(run)).toBe(true);
    expect(checkRun(run, config)).toMatchObject({ ok: false, reason: 'InvalidSpec', message: expect.stringContaining('spec.model.engine.dModel: must be divisible by heads (4)') });
    const [engine] = engineParse([JSON.stringify({ d_model: 130, heads: 4 })]);
    expect(engine).toMatchObject({ ok: false, error: expect.stringContaining('config_json.d_model (130) must be divisible by heads (4)') });
  });

  it('maps model.lora to the engine lora names and refuses its old spellings', () => {
    const text = renderedEngineConfig('tau2-airline', (s) => Object.assign(s.model.lora, { dropout: 0.05, targetModules: ['q_proj'] }));
    expect(JSON.parse(text).lora).toEqual({ r: 16, alpha: 32, dropout: 0.05, target_modules: ['q_proj'] });
    const run = exampleRun('tau2-airline', (r) => Object.assign((r.spec as Schema).model.lora, { r: 8 }));
    expect(checkRun(run, config)).toMatchObject({ ok: false, message: expect.stringMatching(/spec\.model\.lora: .*"r"/) });
    expect(validateRun(run)).toBe(false);
  });
});
