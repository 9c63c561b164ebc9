// Where pods find the model (spec.model.source): what each kind renders into the policy and learner pods
// (volumes, mounts, init containers, vLLM args, the engine's model, the sidecar's tokenizer folder), every
// object valid for Kubernetes, and the specs refused with a message naming the field.

import type { V1Container, V1PodSpec } from '@kubernetes/client-node';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { desiredObjects } from './actor-workloads.js';
import { resolveControllerConfig } from './config.js';
import { trainingRunCrd } from './crd.js';
import { checkRun } from './spec-validation.js';
import { crdSchemaForAjv } from './testing/crd-ajv.js';
import { validateObject } from './testing/validate-objects.js';
import type { TrainingRun } from './training-run.js';

const config = resolveControllerConfig({ sharedVolumeClaim: 'parley-data' }, {});
const QWEN = 'Qwen/Qwen3-8B';

const run = (model: object, domain = 'retail'): TrainingRun => ({
  apiVersion: 'parley.dev/v1alpha1',
  kind: 'TrainingRun',
  metadata: { name: 'm1', namespace: 'ns', uid: 'uid-1' },
  spec: { model, data: { domain } } as TrainingRun['spec'],
});

/** The run's pod specs by group, every object checked against the Kubernetes schemas, and its learner.yaml. */
function render(model: object, domain?: string) {
  const check = checkRun(run(model, domain), config);
  if (!check.ok) throw new Error(check.message);
  const objs = desiredObjects(run(model, domain), check.spec, config, check.rendered, { scaleToZero: false });
  for (const o of [objs.configMap, ...objs.services, ...objs.workloads.map((w) => w.obj)]) validateObject(o as never);
  const pods = Object.fromEntries(objs.workloads.map((w) => [w.group, w.obj.spec!.template.spec!])) as Record<string, V1PodSpec>;
  const learnerYaml = parse(check.rendered.data['learner.yaml']!) as { model: string };
  return { pods, learnerModel: learnerYaml.model };
}

const container = (pod: V1PodSpec, name: string): V1Container => pod.containers.find((c) => c.name === name)!;
const env = (c: V1Container, name: string) => c.env?.find((e) => e.name === name)?.value;
const arg = (c: V1Container, flag: string) => c.args![c.args!.indexOf(flag) + 1];

describe('spec.model.source renders into the pods that load the model', () => {
  it('pvc: the claim mounted read-only at /models in vLLM, the sidecar and the engine, which load <mount>/<path>', () => {
    const { pods, learnerModel } = render({ name: QWEN, source: { kind: 'pvc', claimName: 'models', path: 'qwen/Qwen3-8B/' } });
    for (const group of ['policy', 'learner']) {
      expect(pods[group]!.volumes).toContainEqual({ name: 'model', persistentVolumeClaim: { claimName: 'models', readOnly: true } });
      expect(pods[group]!.initContainers, group).toBeUndefined();
    }
    const mount = { name: 'model', mountPath: '/models', readOnly: true };
    const vllm = container(pods.policy!, 'vllm');
    expect(arg(vllm, '--model')).toBe('/models/qwen/Qwen3-8B');
    // The sidecar asks vLLM for the model by its name, whatever folder it was loaded from.
    expect(arg(vllm, '--served-model-name')).toBe(QWEN);
    expect(vllm.volumeMounts).toContainEqual(mount);
    const sidecar = container(pods.policy!, 'policy');
    expect(sidecar.volumeMounts).toContainEqual(mount);
    expect(env(sidecar, 'PARLEY_MODEL_DIR')).toBe('/models/qwen/Qwen3-8B');
    expect(env(sidecar, 'PARLEY_MODEL_NAME')).toBe(QWEN);
    expect(container(pods.learner!, 'engine').volumeMounts).toContainEqual(mount);
    expect(learnerModel).toBe('/models/qwen/Qwen3-8B');
    // Pods that do not load the model never see the claim.
    for (const group of ['sandbox', 'rollout', 'coordinator', 'userSimulator']) expect(pods[group]!.volumes!.map((v) => v.name), group).not.toContain('model');
  });

  it('pvc: model.tokenizer, when set, stays the sidecar’s tokenizer folder', () => {
    const { pods } = render({ name: QWEN, tokenizer: '/data/tok', source: { kind: 'pvc', claimName: 'models', path: 'qwen' } });
    expect(env(container(pods.policy!, 'policy'), 'PARLEY_MODEL_DIR')).toBe('/data/tok');
  });

  it('url: an init container downloads into /data/models/<name>-<hash>, where vLLM, the sidecar and the engine read it', () => {
    const url = 'https://models.example/qwen3-8b.tar.gz';
    const { pods, learnerModel } = render({ name: QWEN, source: { kind: 'url', url } });
    const dir = learnerModel;
    expect(dir).toMatch(/^\/data\/models\/Qwen-Qwen3-8B-[0-9a-f]{12}$/);
    for (const group of ['policy', 'learner']) {
      const init = pods[group]!.initContainers!;
      expect(init.map((c) => c.name), group).toEqual(['prepare-model']);
      expect(init[0]!.args).toEqual(['prepare', 'model', '--url', url, '--out', dir]);
      expect(init[0]!.volumeMounts).toContainEqual({ name: 'data', mountPath: '/data' });
      expect(pods[group]!.volumes!.map((v) => v.name)).not.toContain('model');
    }
    expect(arg(container(pods.policy!, 'vllm'), '--model')).toBe(dir);
    expect(env(container(pods.policy!, 'policy'), 'PARLEY_MODEL_DIR')).toBe(dir);
    expect(container(pods.learner!, 'engine').volumeMounts).toContainEqual({ name: 'data', mountPath: '/data' });
    // Another URL for the same model is another folder: a shared volume never serves a stale download.
    expect(render({ name: QWEN, source: { kind: 'url', url: `${url}?v=2` } }).learnerModel).not.toBe(dir);
  });

  it('builtin: the prepare builtin init container, as without a source', () => {
    const explicit = render({ source: { kind: 'builtin' } }, 'local');
    expect(explicit).toEqual(render({}, 'local'));
    for (const group of ['policy', 'learner', 'sandbox']) {
      expect(explicit.pods[group]!.initContainers!.map((c) => c.args!.slice(0, 2)), group).toEqual([['prepare', 'builtin']]);
    }
    expect(explicit.learnerModel).toBe('builtin');
  });

  it('no source with a hub model: vLLM and the engine get model.name as it is, with no init container or claim', () => {
    const { pods, learnerModel } = render({ name: QWEN });
    expect(arg(container(pods.policy!, 'vllm'), '--model')).toBe(QWEN);
    expect(env(container(pods.policy!, 'policy'), 'PARLEY_MODEL_DIR')).toBe(`/data/models/${QWEN}`);
    expect(learnerModel).toBe(QWEN);
    for (const group of ['policy', 'learner']) expect(pods[group]!.initContainers, group).toBeUndefined();
  });
});

describe('spec.model.source refusals name the field', () => {
  const refused = (model: object, domain = 'retail') => {
    const check = checkRun(run(model, domain), config);
    expect(check.ok, JSON.stringify(model)).toBe(false);
    return check.ok ? '' : check.message;
  };

  it('refuses an unknown kind, as the CRD schema does at apply time', () => {
    const bad = run({ name: QWEN, source: { kind: 'git', url: 'https://x/y.tar' } });
    expect(refused(bad.spec.model as object)).toMatch(/^spec\.model\.source\.kind: /);
    const root = (trainingRunCrd() as any).spec.versions[0].schema.openAPIV3Schema;
    const validate = new Ajv({ allErrors: true, strict: false }).compile(crdSchemaForAjv(root));
    expect(validate(bad)).toBe(false);
    expect(validate.errors).toContainEqual(expect.objectContaining({ instancePath: '/spec/model/source/kind', keyword: 'enum' }));
    expect(validate(run({ name: QWEN, source: { kind: 'pvc', claimName: 'models', path: 'qwen' } }))).toBe(true);
  });

  it('refuses a pvc without claimName or path, an absolute or escaping path, and a bad claim name', () => {
    const m = refused({ name: QWEN, source: { kind: 'pvc' } });
    expect(m).toContain('spec.model.source.claimName: required for kind pvc');
    expect(m).toContain('spec.model.source.path: required for kind pvc');
    expect(refused({ name: QWEN, source: { kind: 'pvc', claimName: 'models', path: '/abs' } })).toMatch(/^spec\.model\.source\.path: /);
    expect(refused({ name: QWEN, source: { kind: 'pvc', claimName: 'models', path: 'a/../../b' } })).toMatch(/^spec\.model\.source\.path: /);
    expect(refused({ name: QWEN, source: { kind: 'pvc', claimName: 'Models_1', path: 'a' } })).toMatch(/^spec\.model\.source\.claimName: /);
  });

  it('refuses a url that is missing or not http(s), and fields another kind uses', () => {
    expect(refused({ name: QWEN, source: { kind: 'url' } })).toMatch(/^spec\.model\.source\.url: required/);
    for (const url of ['ftp://x/m.tar.gz', 'file:///m.tar', 'models/m.tar']) expect(refused({ name: QWEN, source: { kind: 'url', url } })).toMatch(/^spec\.model\.source\.url: .*http/);
    expect(refused({ name: QWEN, source: { kind: 'url', url: 'https://x/m.tar', claimName: 'models' } })).toMatch(/^spec\.model\.source\.claimName: not used by kind url/);
  });

  it('refuses a builtin source with another model name, and a pvc or url source for the builtin model', () => {
    expect(refused({ name: QWEN, source: { kind: 'builtin' } })).toMatch(/^spec\.model\.source\.kind: builtin .*'Qwen\/Qwen3-8B'/);
    expect(refused({ source: { kind: 'url', url: 'https://x/m.tar' } }, 'local')).toMatch(/^spec\.model\.source\.kind: url .*builtin/);
  });
});
