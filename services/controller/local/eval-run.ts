// `parley eval`: pass^k with confidence intervals on any domain — the local domain with the builtin model
// (fresh, or the weights of a run's checkpoint) and the scripted user, or a τ² domain with a policy behind
// an OpenAI-compatible (vLLM) endpoint and an LLM user through any OpenAI-compatible endpoint.

import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ParleyError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { Registry } from '../../core/metrics.js';
import { Termination } from '../../core/gen/parley/v1/sandbox_pb.js';
import { CheckpointStore, EngineSamplerBackend, connectTrainer, startEngineProcess } from '../../learner/index.js';
import { OpenAICompatibleBackend, loadChatModel, type PolicyBackend } from '../../policy/index.js';
import type { RunSpec } from '../run-spec.js';
import { episodeOptions, evalTaskIds, startLocalActors } from './actors.js';
import { evalHorizon, evaluate } from '../../eval/index.js';
import type { Progress } from './progress.js';
import { engineConfig, localPaths, prepareLocalData, runFolderPaths } from './setup.js';

export interface EvalRunOptions {
  k: number;
  /** A `parley run` output folder whose latest checkpoint is evaluated (local domain). */
  checkpoint?: string;
  /** Where data, model folder and eval.json go when no checkpoint folder is given. */
  out: string;
  /** OpenAI-compatible policy endpoint (τ² domains), e.g. http://vllm:8000/v1. */
  policyUrl?: string;
  /** User simulator: llm mode settings (baseUrl, model, apiKeyEnv) or scripted. */
  user?: Record<string, unknown>;
  python?: string;
  logger: Logger;
  progress: Progress;
}

export interface EvalRunResult {
  domain: string;
  /** The task set evaluated (e.g. tasks_release_37199f3.json) and the reward components it is scored on. */
  tasksFile: string;
  basis: string[];
  k: number;
  tasks: number;
  pass: Record<string, { value: number; low: number; high: number }>;
  meanReward: number;
  terminations: Record<string, number>;
  weights: string | null;
}

/** Runs the evaluation and writes eval.json. Rejects naming a missing setting, folder or checkpoint. */
export async function runEvaluation(spec: RunSpec, o: EvalRunOptions): Promise<EvalRunResult> {
  const closers: (() => unknown)[] = [];
  const registry = new Registry();
  try {
    let backend: PolicyBackend;
    let dataRoot: string;
    let domainDir: string | undefined;
    let modelDir: string;
    let weights: string | null = null;
    if (spec.model.name === 'builtin') {
      if (spec.data.domain !== 'local') throw new ParleyError('failed_precondition', `data.domain: the builtin model evaluates on the local domain only`, { field: 'data.domain' });
      const paths = o.checkpoint ? runFolderPaths(spec, o.checkpoint) : localPaths(spec, o.out);
      if (!o.checkpoint) await prepareLocalData(spec, paths, (l) => o.progress.log(l));
      else if (!existsSync(join(paths.domainDir, 'tasks.json'))) throw new ParleyError('not_found', `--checkpoint: ${paths.out} is not a parley run folder (no data/local/tasks.json)`);
      dataRoot = paths.dataRoot;
      modelDir = paths.modelDir;
      const model = loadChatModel(modelDir);
      const engine = await startEngineProcess({ python: o.python });
      closers.push(() => engine.stop());
      const trainer = connectTrainer(engine.address);
      closers.push(() => trainer.close());
      await trainer.init({ model: 'builtin', configJson: JSON.stringify(engineConfig(spec, model.vocabSize)), seed: BigInt(spec.seed) });
      if (o.checkpoint) {
        const latest = await new CheckpointStore(paths.checkpointDir).latest();
        weights = latest?.weightsPath ?? null;
        if (!weights) throw new ParleyError('not_found', `--checkpoint: no checkpoint in ${paths.checkpointDir}`);
        await trainer.loadWeights({ path: weights });
        o.progress.log(`evaluating weights ${weights}`);
      }
      backend = new EngineSamplerBackend(trainer, { stopTokenIds: model.encode('<|im_end|>'), sharedWithTrainer: true, maxBatch: 256 });
    } else {
      if (!o.policyUrl) throw new ParleyError('invalid_argument', `--policy-url: required for model '${spec.model.name}' (an OpenAI-compatible server such as vLLM serving it)`, { field: 'policy-url' });
      if (!spec.model.tokenizer) throw new ParleyError('invalid_argument', 'model.tokenizer: required: the folder with tokenizer.json and tokenizer_config.json of the served model', { field: 'model.tokenizer' });
      if (!spec.data.dataDir) throw new ParleyError('invalid_argument', 'data.dataDir: required: the τ² domain folder', { field: 'data.dataDir' });
      modelDir = resolve(spec.model.tokenizer);
      domainDir = resolve(spec.data.dataDir);
      dataRoot = resolve(domainDir, '..');
      backend = new OpenAICompatibleBackend({ baseUrl: o.policyUrl, model: spec.model.name, timeoutMs: 120_000, retry: { maxRetries: 4, baseDelayMs: 200, maxDelayMs: 10_000 }, maxConcurrency: 64 });
    }
    const model = loadChatModel(modelDir);
    const actors = await startLocalActors({ spec, dataRoot, domainDir, model, backend, registry, logger: o.logger, user: o.user });
    closers.push(() => actors.close());
    const taskIds = evalTaskIds(spec, actors.domain);
    o.progress.log(`evaluating ${taskIds.length} tasks of ${spec.data.domain}/${actors.tasksFile}`);
    const r = await evaluate(actors.ports, actors.info, {
      tasksFile: actors.tasksFile,
      run: spec.name, domain: spec.data.domain, taskIds, k: o.k, mode: spec.rollout.mode,
      // The last stage's horizon in MUA mode; none in τ² mode.
      horizon: evalHorizon(spec.rollout.mode, { horizons: spec.horizon.horizons, everySteps: spec.horizon.everySteps }, Number.MAX_SAFE_INTEGER),
      concurrency: spec.rollout.concurrency, episode: episodeOptions(spec), seed: spec.seed, label: 'eval',
      onProgress: (d, t) => o.progress.status(`evaluating: ${d}/${t} episodes`),
    });
    o.progress.log(`reward basis ${r.basis.join(' × ')} (task file ${actors.tasksFile})`);
    const result: EvalRunResult = {
      domain: spec.data.domain,
      tasksFile: actors.tasksFile,
      basis: r.basis,
      k: o.k,
      tasks: taskIds.length,
      pass: r.report.passk,
      meanReward: r.meanReward,
      terminations: Object.fromEntries(Object.entries(r.terminations).map(([k, v]) => [Termination[Number(k)] ?? k, v])),
      weights,
    };
    const outDir = resolve(o.checkpoint ?? o.out);
    mkdirSync(outDir, { recursive: true });
    writeFileSync(join(outDir, 'eval.json'), JSON.stringify(result, null, 2) + '\n');
    return result;
  } finally {
    for (const c of closers.reverse()) await Promise.resolve(c()).catch(() => undefined);
  }
}
