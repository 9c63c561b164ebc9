// The TrainingRun CRD and the k8s/ manifests: generated files are current, the CRD is structural and
// valid, every example run passes both the CRD schema (as the API server checks it) and RunSpecSchema,
// and statuses the controller computes match the status schema.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { desiredObjects } from '../services/controller/actor-workloads.js';
import { resolveControllerConfig } from '../services/controller/config.js';
import { trainingRunCrd } from '../services/controller/crd.js';
import { generatedFiles, staleFiles } from '../services/controller/crd-generate.js';
import { computeStatus } from '../services/controller/run-status.js';
import { checkRun } from '../services/controller/spec-validation.js';
import { crdSchemaForAjv } from '../services/controller/testing/crd-ajv.js';
import { REPO, exampleRun } from '../services/controller/testing/harness.js';
import { restrictedViolations } from '../services/controller/testing/pod-security-check.js';
import { validateObject } from '../services/controller/testing/validate-objects.js';

const EXAMPLES = ['tau2-retail-qwen3-8b', 'tau2-airline', 'cpu-small'];
type Schema = Record<string, any>;

const crd = trainingRunCrd() as Schema;
const version = crd.spec.versions[0];
const root = version.schema.openAPIV3Schema;
const ajv = new Ajv({ allErrors: true, strict: false });
const validateRun = ajv.compile(crdSchemaForAjv(root, { unknownFields: 'reject' }));
const validateStatus = ajv.compile(crdSchemaForAjv(root.properties.status, { unknownFields: 'reject' }));

/** Every node typed; unions only as int-or-string; no additionalProperties beside properties. */
function structuralProblems(s: Schema, path: string): string[] {
  const out: string[] = [];
  const intOrString = s['x-kubernetes-int-or-string'] === true;
  if (!s.type && !intOrString && !s['x-kubernetes-preserve-unknown-fields']) out.push(`${path}: no type`);
  if (s.anyOf && !intOrString) out.push(`${path}: anyOf outside int-or-string`);
  if (s.oneOf || s.allOf || s.not || s.$ref) out.push(`${path}: oneOf/allOf/not/$ref`);
  if (s.properties && s.additionalProperties !== undefined) out.push(`${path}: properties with additionalProperties`);
  for (const [k, v] of Object.entries(s.properties ?? {})) out.push(...structuralProblems(v as Schema, `${path}.${k}`));
  if (s.items) out.push(...structuralProblems(s.items, `${path}[]`));
  if (typeof s.additionalProperties === 'object') out.push(...structuralProblems(s.additionalProperties, `${path}.*`));
  return out;
}

describe('the TrainingRun CRD', () => {
  it('is current in k8s/crds and the chart (run npx tsx services/controller/crd-generate.ts when this fails)', () => {
    expect(staleFiles(REPO)).toEqual([]);
    expect(readFileSync(join(REPO, 'k8s/crds/trainingruns.parley.dev.yaml'), 'utf8')).toBe(generatedFiles()['charts/parley/crds/trainingruns.parley.dev.yaml']);
  });

  it('is a valid, structural apiextensions.k8s.io/v1 object with status, printer columns and conditions', () => {
    validateObject(crd);
    expect(structuralProblems(root, 'openAPIV3Schema')).toEqual([]);
    expect(version.subresources).toEqual({ status: {} });
    expect(version.additionalPrinterColumns.map((c: Schema) => c.name)).toEqual(['Phase', 'Step', 'Policy', 'Reward', 'Pass-Rate', 'Age']);
    expect(root.properties.status.properties.conditions['x-kubernetes-list-map-keys']).toEqual(['type']);
    expect(root.properties.spec.required).toEqual(['data']);
    expect(root.properties.spec.properties.actors.properties.learner.properties.resources.properties.limits.additionalProperties['x-kubernetes-int-or-string']).toBe(true);
  });

  it('rejects what the run spec rejects, before the controller sees it', () => {
    const bad = exampleRun('cpu-small', (r) => Object.assign((r.spec as Schema).algorithm, { estimator: 'ppo', groupSize: 0 }));
    expect(validateRun(bad)).toBe(false);
    expect(ajv.errorsText(validateRun.errors)).toMatch(/estimator|groupSize/);
  });
});

describe('k8s/', () => {
  const config = resolveControllerConfig({ sharedVolumeClaim: 'parley-data' }, {});

  it.each(EXAMPLES)('example %s passes the CRD schema and RunSpecSchema, and renders restricted, valid actors', (name) => {
    const run = exampleRun(name);
    expect(validateRun(run), ajv.errorsText(validateRun.errors)).toBe(true);
    const check = checkRun(run, config);
    if (!check.ok) throw new Error(check.message);
    const objs = desiredObjects({ ...run, metadata: { ...run.metadata, namespace: 'ml', uid: 'uid-1' } }, check.spec, config, check.rendered, { scaleToZero: false });
    for (const o of [objs.configMap, ...objs.services, ...objs.workloads.map((w) => w.obj)]) validateObject(o as Schema);
    for (const w of objs.workloads) expect(restrictedViolations(w.obj.spec!.template.spec!), `${name} ${w.group}`).toEqual([]);
  });

  it('the airline example asks for GPUs where DESIGN puts them and keeps its API key out of pod specs', () => {
    const run = exampleRun('tau2-airline');
    const check = checkRun(run, config);
    if (!check.ok) throw new Error(check.message);
    const objs = desiredObjects({ ...run, metadata: { ...run.metadata, namespace: 'ml', uid: 'uid-1' } }, check.spec, config, check.rendered, { scaleToZero: false });
    const usersim = objs.workloads.find((w) => w.group === 'userSimulator')!.obj.spec!.template.spec!.containers[0]!;
    expect(usersim.env!.find((e) => e.name === 'OPENAI_API_KEY')).toEqual({ name: 'OPENAI_API_KEY', valueFrom: { secretKeyRef: { name: 'usersim-api-key', key: 'api-key' } } });
    const gpu = (g: string) => objs.workloads.find((w) => w.group === g)!.obj.spec!.template.spec!.containers.some((c) => c.resources?.limits?.['nvidia.com/gpu'] === '1');
    expect([gpu('policy'), gpu('learner'), gpu('sandbox'), gpu('rollout')]).toEqual([true, true, false, false]);
  });

  it('RBAC manifests are valid', () => {
    const docs = parseAllDocuments(readFileSync(join(REPO, 'k8s/rbac/controller-rbac.yaml'), 'utf8')).map((d) => d.toJS());
    expect(docs.map((d) => d.kind)).toEqual(['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding']);
    for (const d of docs) validateObject(d);
  });

  it('statuses the controller computes match the CRD status schema', () => {
    const now = '2026-01-01T00:00:00.000Z';
    const groups = ['policy', 'learner'].map((group) => ({ group, desired: 1, ready: 1, restarts: 3, retiredRestarts: 1, maxRestarts: 2, lastFailureTime: now, nextRestartTime: now }));
    const statuses = [
      computeStatus(undefined, { generation: 1, now, spec: { ok: false, reason: 'InvalidSpec', message: 'spec.data: required' }, suspend: false, steps: 10, groups: [] }),
      computeStatus(undefined, { generation: 2, now, spec: { ok: true }, suspend: false, steps: 10, groups, progress: { step: 4, policyVersion: 4, metrics: { rewardMean: 0.5, passRate: 0.25, episodes: 64, updatedAt: now } } }),
      computeStatus(undefined, { generation: 3, now, spec: { ok: true }, busError: 'NATS: unavailable', suspend: true, steps: 10, groups: [] }),
    ];
    expect(statuses.map((s) => s.phase)).toEqual(['Invalid', 'Failed', 'Suspended']);
    for (const s of statuses) expect(validateStatus(JSON.parse(JSON.stringify(s))), ajv.errorsText(validateStatus.errors)).toBe(true);
  });

  it('the chart CRD is the generated one', () => {
    expect(parse(readFileSync(join(REPO, 'charts/parley/crds/trainingruns.parley.dev.yaml'), 'utf8'))).toEqual(crd);
  });
});
