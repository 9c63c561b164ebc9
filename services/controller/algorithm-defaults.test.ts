// The algorithm's defaults match the references (issue #23 item 5): dynamic sampling off as in verl, PPO
// epochs and warm-up reaching the learner, the demo keeping its behaviour, paper recipes on-policy.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { learnerConfig } from '../learner/config.js';
import { resolveControllerConfig } from './config.js';
import { RunSpecSchema } from './run-spec.js';
import { learnerAlgorithmSettings, learnerSettings } from './run-config.js';
import { checkRun } from './spec-validation.js';
import { REPO, exampleRun } from './testing/harness.js';

describe('algorithm defaults', () => {
  it('keeps zero-variance groups unless a run asks for dynamic sampling, in the spec and in the learner', () => {
    const spec = RunSpecSchema.parse({ name: 'r1', data: { domain: 'local' } });
    expect(spec.algorithm.dropZeroVarianceGroups).toBe(false);
    expect(learnerConfig({}).dropZeroVarianceGroups).toBe(false);
    expect(learnerConfig(learnerAlgorithmSettings(spec)).dropZeroVarianceGroups).toBe(false);
  });

  it('renders a learner the cluster can start for a group of one and for large steps (one derivation with the local run)', () => {
    const config = resolveControllerConfig({}, {});
    const one = RunSpecSchema.parse({ name: 'r1', data: { domain: 'local' }, algorithm: { groupSize: 1 } });
    expect(learnerConfig(learnerSettings(one, config))).toMatchObject({ minGroupSize: 1, groupSize: 1 });
    const big = RunSpecSchema.parse({ name: 'r1', data: { domain: 'local' }, algorithm: { groupSize: 16, groupsPerStep: 512 } });
    expect(learnerConfig(learnerSettings(big, config)).maxBufferedTrajectories).toBeGreaterThanOrEqual(16 * 512);
  });

  it('hands ppoEpochs and warmupSteps to the learner, in the local run and in the rendered learner.yaml', () => {
    const spec = RunSpecSchema.parse({ name: 'r1', data: { domain: 'local' }, algorithm: { ppoEpochs: 3, warmupSteps: 7 } });
    expect(learnerConfig(learnerAlgorithmSettings(spec))).toMatchObject({ ppoEpochs: 3, warmupSteps: 7 });
    expect(learnerSettings(spec, resolveControllerConfig({}, {}))).toMatchObject({ ppoEpochs: 3, warmupSteps: 7 });
    const check = checkRun(exampleRun('cpu-small', (r) => Object.assign((r.spec as any).algorithm, { ppoEpochs: 2, warmupSteps: 4 })), resolveControllerConfig({}, {}));
    if (!check.ok) throw new Error(check.message);
    expect(parse(check.rendered.data['learner.yaml']!)).toMatchObject({ ppoEpochs: 2, warmupSteps: 4 });
  });

  it('keeps the demo on dynamic sampling, which it relies on, by saying so', () => {
    const demo = RunSpecSchema.parse(parse(readFileSync(join(REPO, 'examples/local/demo.yaml'), 'utf8')));
    expect(demo.algorithm.dropZeroVarianceGroups).toBe(true);
  });

  it('runs the paper recipe on-policy', () => {
    const retail = parse(readFileSync(join(REPO, 'k8s/examples/tau2-retail-qwen3-8b.yaml'), 'utf8'));
    expect(RunSpecSchema.parse({ name: retail.metadata.name, ...retail.spec }).algorithm.maxStepsOffPolicy).toBe(0);
  });
});
