// Prepares a local run: the generated domain and the builtin model's tokenizer folder, the learner
// configuration derived from the run spec, and the engine settings.

import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ParleyError } from '../../core/errors.js';
import type { LearnerConfigInput } from '../../learner/index.js';
import { generateLocalDomain } from '../../sandbox/domains/local/index.js';
import { writeLocalModelFolder } from '../../sandbox/domains/local-model/index.js';
import { engineInitConfig, learnerAlgorithmSettings } from '../run-config.js';
import type { RunSpec } from '../run-spec.js';

export interface LocalPaths {
  out: string;
  dataRoot: string;
  domainDir: string;
  modelDir: string;
  checkpointDir: string;
  coldStartDir: string;
  statePath: string;
}

/** Output layout of a local run. */
export function localPaths(spec: RunSpec, out: string): LocalPaths {
  const o = resolve(out);
  return {
    out: o,
    dataRoot: join(o, 'data'),
    domainDir: join(o, 'data', 'local'),
    modelDir: join(o, 'model'),
    checkpointDir: resolve(o, spec.checkpoint.dir),
    coldStartDir: join(o, 'cold-start'),
    statePath: join(o, 'run-state.json'),
  };
}

/**
 * Checks that the spec can run on this machine. Throws failed_precondition naming what to change:
 * the laptop mode trains the builtin model on the generated local domain; τ² domains and Hugging Face
 * models need vLLM and GPUs (a cluster run).
 */
export function checkLocalSpec(spec: RunSpec): void {
  if (spec.model.name !== 'builtin') {
    throw new ParleyError('failed_precondition', `model.name: '${spec.model.name}' needs vLLM and a GPU; a local run trains model.name: builtin (run it on a cluster with kubectl apply)`, { field: 'model.name' });
  }
  if (spec.data.domain !== 'local') {
    throw new ParleyError('failed_precondition', `data.domain: the builtin model has a word vocabulary for the generated 'local' domain only; τ² domain '${spec.data.domain}' needs a Hugging Face model (cluster run)`, { field: 'data.domain' });
  }
}

/** Generates the domain and the model folder unless they exist (resume keeps them). Resolves the vocabulary size. */
export async function prepareLocalData(spec: RunSpec, paths: LocalPaths, log: (line: string) => void): Promise<void> {
  if (!existsSync(join(paths.domainDir, 'tasks.json'))) {
    const l = spec.data.local;
    const g = generateLocalDomain({ seed: spec.seed, trainTasks: l.trainTasks, evalTasks: l.evalTasks, missingInfoShare: l.missingInfoShare, customers: l.customers, holdout: l.holdout, outDir: paths.domainDir });
    log(`generated the local domain: ${g.train.length} train and ${g.test.length} held-out tasks (held out by ${l.holdout}; ${Math.round(l.missingInfoShare * 100)}% need a question to the user)`);
  }
  if (!existsSync(join(paths.modelDir, 'tokenizer.json'))) {
    const m = await writeLocalModelFolder(paths.domainDir, paths.modelDir, { maxLength: spec.model.maxContextTokens });
    log(`wrote the builtin model's word tokenizer (${m.vocabSize} tokens) to ${paths.modelDir}`);
  }
}

/** The engine's Init settings for the builtin model: the run's (engineInitConfig) with the tokenizer's vocabulary size. */
export function engineConfig(spec: RunSpec, vocabSize: number): Record<string, unknown> {
  return engineInitConfig(spec, vocabSize);
}

/**
 * The learner's settings: the cluster's derivation (learnerAlgorithmSettings, as in the learner pod's
 * learner.yaml) with what differs on one machine: the output folder's paths, the cold start's weights,
 * the vocabulary already known, and no group timeout (every actor is in this process: a group cannot
 * lose a sample to a crash, so waiting for it never stalls).
 */
export function learnerConfig(spec: RunSpec, paths: LocalPaths, engine: Record<string, unknown>, initialWeights: string): LearnerConfigInput {
  return {
    ...learnerAlgorithmSettings(spec),
    groupTimeoutMs: 0,
    checkpointDir: paths.checkpointDir,
    weightsTransport: 'directory',
    model: 'builtin',
    engineConfigJson: JSON.stringify(engine),
    initialWeights,
  };
}
