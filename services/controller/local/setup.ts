// The builtin model's files on one machine: the generated local domain and the word tokenizer's model
// folder (`parley prepare builtin`, the pods' init step, and `parley eval`), and the engine settings.

import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { generateLocalDomain } from '../../sandbox/domains/local/index.js';
import { writeLocalModelFolder } from '../../sandbox/domains/local-model/index.js';
import { engineInitConfig } from '../run-config.js';
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
 * The layout of a `parley run` output folder: the run's data volume is DIR/volumes/data, where the pods'
 * /data/<run>/builtin (domain, tokenizer) and /data/<run>/<checkpoint.dir> are.
 */
export function runFolderPaths(spec: RunSpec, dir: string): LocalPaths {
  const run = join(resolve(dir), 'volumes', 'data', spec.name);
  const checkpointDir = resolve(run, spec.checkpoint.dir);
  return {
    out: resolve(dir),
    dataRoot: join(run, 'builtin', 'data'),
    domainDir: join(run, 'builtin', 'data', 'local'),
    modelDir: join(run, 'builtin', 'model'),
    checkpointDir,
    coldStartDir: join(checkpointDir, 'cold-start'),
    statePath: join(resolve(dir), 'run-state.json'),
  };
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
