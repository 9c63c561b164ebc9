// `parley run <spec.yaml> --out DIR`: a training run on this machine, as the controller runs it (services/controller/local/ and pods/).

import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { parseConfig } from '../core/config.js';
import { createLogger } from '../core/logger.js';
import { runLocal } from '../controller/local/local-run.js';
import { Progress } from '../controller/local/progress.js';
import { RunSpecSchema, type RunSpec } from '../controller/run-spec.js';
import { CliError } from './errors.js';

/** Reads and validates a run spec (YAML or JSON; a TrainingRun manifest's `spec` also works). Throws naming the bad field. */
export function readRunSpec(path: string, overrides: Record<string, unknown> = {}): RunSpec {
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new CliError(`cannot read the run spec ${path}: ${(e as Error).message}`);
  }
  if (raw && typeof raw === 'object' && 'kind' in raw && (raw as { kind: unknown }).kind === 'TrainingRun') {
    const m = raw as { metadata?: { name?: string }; spec?: Record<string, unknown> };
    raw = { name: m.metadata?.name, ...m.spec };
  }
  const merged = deepMerge(raw as Record<string, unknown>, overrides);
  return parseConfig(RunSpecSchema, merged, `run spec ${path}`);
}

function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && out[k] && typeof out[k] === 'object' ? deepMerge(out[k] as Record<string, unknown>, v as Record<string, unknown>) : v;
  }
  return out;
}

export function registerRunCommand(program: Command): void {
  program
    .command('run')
    .description("Run a training run on this machine as the controller runs it in a cluster: the run's pods as local processes over a nats-server")
    .argument('<spec>', 'run spec or TrainingRun manifest (YAML)')
    .option('--out <dir>', 'output folder: volumes, pod logs, NATS store, report', 'out/run')
    .option('--nats <url>', 'use this NATS server instead of starting one')
    .option('--resume', 'continue the run in --out from its latest checkpoint', false)
    .option('--steps <n>', 'override algorithm.steps')
    .option('--seed <n>', 'override seed')
    .option('--python <path>', 'Python interpreter with PyTorch for the engines (default $PARLEY_PYTHON, else .venv-engine/bin/python when scripts/setup-engine-env.sh made it, else /usr/bin/python3)')
    .option('--pods', 'only the pods, as a cluster runs them (no baseline evaluation of the untrained model; report.json is the pods report)', false)
    .option('--kill <group@step...>', 'SIGKILL the first pod of a group after a step, e.g. --kill learner@1 policy@2 (crash rehearsal)')
    .option('--timeout <seconds>', 'fail when the run has not finished by then')
    .option('--volume <claim=dir...>', 'bind a PersistentVolumeClaim the run names (e.g. model.source.claimName) to a folder of this machine')
    .action(async (specPath: string, opts: { out: string; nats?: string; resume: boolean; steps?: string; seed?: string; python?: string; pods: boolean; kill?: string[]; timeout?: string; volume?: string[] }) => {
      const overrides: Record<string, unknown> = {};
      if (opts.steps !== undefined) overrides.algorithm = { steps: Number(opts.steps) };
      if (opts.seed !== undefined) overrides.seed = Number(opts.seed);
      const kills = parseKills(opts.kill);
      const claims = parseVolumes(opts.volume);
      const timeout = opts.timeout === undefined ? undefined : Number(opts.timeout);
      if (timeout !== undefined && !(timeout > 0)) throw new CliError(`--timeout: expected seconds > 0, got '${opts.timeout}'`);
      if (opts.pods) {
        await runPodsCommand(resolve(specPath), overrides, opts, kills, timeout, claims);
        return;
      }
      const spec = readRunSpec(resolve(specPath), overrides);
      const logger = createLogger('run', process.env.PARLEY_LOG_LEVEL ?? 'warn');
      const progress = new Progress();
      const stop = abortOnSignals(() => progress.log('stopping: deleting the pods (the learner has checkpointed every step; continue with --resume; Ctrl-C again to quit at once)'));
      try {
        const report = await runLocal(spec, {
          out: opts.out,
          natsUrl: opts.nats,
          resume: opts.resume,
          python: opts.python,
          kills,
          claims,
          timeoutMs: timeout === undefined ? undefined : timeout * 1000,
          logger,
          signal: stop.signal,
          progress,
        });
        progress.done();
        const f = (x: number | undefined) => (x === undefined ? 'n/a' : x.toFixed(3));
        process.stdout.write(
          `held-out pass^1: baseline ${f(report.baseline.pass1)}, after SFT ${f(report.after_sft?.pass1)}, final ${f(report.final.pass1)} (seed ${report.seed})\n` +
            `report: ${resolve(opts.out, 'report.json')}, ${resolve(opts.out, 'summary.md')}, ${resolve(opts.out, 'reward-curve.svg')}\n`,
        );
      } catch (e) {
        progress.done();
        if (stop.signal.aborted) process.exit(130);
        throw e;
      } finally {
        stop.dispose();
      }
    });
}

/** SIGINT/SIGTERM abort the returned signal (after `onFirst`); a second one exits at once. dispose() removes the handlers. */
function abortOnSignals(onFirst: () => void): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const onSignal = () => {
    if (controller.signal.aborted) process.exit(130);
    onFirst();
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

const KILL = /^(sandbox|userSimulator|policy|learner|rollout|coordinator)@([0-9]+)$/;

function parseKills(kill: string[] | undefined): { group: 'policy'; afterStep: number }[] {
  return (kill ?? []).map((k) => {
    const m = KILL.exec(k);
    if (!m) throw new CliError(`--kill: expected <group>@<step> with group sandbox, userSimulator, policy, learner, rollout or coordinator, got '${k.slice(0, 80)}'`);
    return { group: m[1] as 'policy', afterStep: Number(m[2]) };
  });
}

const VOLUME = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)=(.+)$/;

function parseVolumes(volume: string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of volume ?? []) {
    const m = VOLUME.exec(v);
    if (!m) throw new CliError(`--volume: expected <claim>=<folder> with a claim name of a-z, 0-9 and '-', got '${v.slice(0, 80)}'`);
    const dir = resolve(m[3]!);
    if (!existsSync(dir)) throw new CliError(`--volume ${m[1]}: folder ${dir} does not exist`);
    out[m[1]!] = dir;
  }
  return out;
}

async function runPodsCommand(path: string, overrides: Record<string, unknown>, opts: { out: string; nats?: string; python?: string }, kills: { group: 'policy'; afterStep: number }[], timeout: number | undefined, claims: Record<string, string>): Promise<void> {
  const { readRunDocument, runPods } = await import('../controller/pods/pods-run.js');
  const doc = readRunDocument(path) as Record<string, unknown>;
  if (doc && typeof doc === 'object') {
    if (doc.kind === 'TrainingRun') doc.spec = deepMerge((doc.spec ?? {}) as Record<string, unknown>, overrides);
    else Object.assign(doc, deepMerge(doc, overrides));
  }
  const progress = new Progress();
  const stop = abortOnSignals(() => progress.log('stopping: deleting the pods (SIGTERM, then SIGKILL after their grace period; Ctrl-C again to quit at once)'));
  try {
    const report = await runPods(doc, {
      out: opts.out,
      natsUrl: opts.nats,
      python: opts.python,
      kills,
      claims,
      timeoutMs: timeout === undefined ? undefined : timeout * 1000,
      logger: createLogger('pods', process.env.PARLEY_LOG_LEVEL ?? 'warn'),
      progress,
      signal: stop.signal,
    });
    progress.done();
    const last = report.iterations.at(-1);
    process.stdout.write(
      `${report.iterations.length} steps in ${report.wall_seconds.toFixed(0)} s; last reward ${last ? last.reward_mean.toFixed(3) : 'n/a'}; final pass^1 ${report.final ? Number(report.final.passRate).toFixed(3) : 'n/a'}\n` +
        `weights loaded: ${Object.entries(report.weights_loaded).map(([p, v]) => `${p} [${v.join(', ')}]`).join('; ')}\n` +
        `report: ${resolve(opts.out, 'report.json')}\n`,
    );
  } finally {
    progress.done();
    stop.dispose();
  }
}

export function registerEvalCommand(program: Command): void {
  program
    .command('eval')
    .description('pass^k with confidence intervals: the local domain (builtin model, scripted user) or a τ² domain (vLLM policy, LLM user)')
    .argument('<spec>', 'run spec (YAML)')
    .option('--k <n>', 'trials per task', '4')
    .option('--checkpoint <dir>', 'a `parley run` output folder: evaluate its latest checkpoint (local domain)')
    .option('--out <dir>', 'output folder (eval.json) when no --checkpoint is given', 'out/eval')
    .option('--policy-url <url>', 'OpenAI-compatible endpoint serving the policy model (τ² domains), e.g. http://localhost:8000/v1')
    .option('--user-url <url>', 'OpenAI-compatible endpoint of the LLM user (default: spec userSimulator.baseUrl)')
    .option('--user-model <name>', 'LLM user model (default: spec userSimulator.model)')
    .option('--tasks <n>', 'evaluate the first N tasks of the evaluation split')
    .option('--python <path>', 'Python interpreter with PyTorch (builtin model)')
    .action(async (specPath: string, opts: { k: string; checkpoint?: string; out: string; policyUrl?: string; userUrl?: string; userModel?: string; tasks?: string; python?: string }) => {
      const k = Number(opts.k);
      if (!Number.isInteger(k) || k < 1) throw new CliError(`--k: expected an integer ≥ 1, got '${opts.k}'`);
      const overrides: Record<string, unknown> = {};
      if (opts.tasks !== undefined) overrides.evaluation = { maxTasks: Number(opts.tasks) };
      const spec = readRunSpec(resolve(specPath), overrides);
      const u = spec.userSimulator;
      const userUrl = opts.userUrl ?? u.baseUrl;
      const user = u.mode === 'llm' || opts.userUrl
        ? { mode: 'llm', baseUrl: userUrl, model: opts.userModel ?? u.model, temperature: u.temperature, apiKeyEnv: u.apiKeySecret ?? 'OPENAI_API_KEY' }
        : { mode: 'scripted' };
      const progress = new Progress();
      const { runEvaluation } = await import('../controller/local/eval-run.js');
      const r = await runEvaluation(spec, { k, checkpoint: opts.checkpoint, out: opts.out, policyUrl: opts.policyUrl, user, python: opts.python, logger: createLogger('eval', process.env.PARLEY_LOG_LEVEL ?? 'warn'), progress });
      progress.done();
      for (const [kk, e] of Object.entries(r.pass)) process.stdout.write(`pass^${kk} = ${e.value.toFixed(3)} (95% CI ${e.low.toFixed(3)}–${e.high.toFixed(3)})\n`);
      process.stdout.write(`${r.tasks} tasks × ${r.k} trials on ${r.domain}; mean reward ${r.meanReward.toFixed(3)}; terminations ${JSON.stringify(r.terminations)}\n`);
    });
}
