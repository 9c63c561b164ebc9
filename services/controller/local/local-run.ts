// `parley run` on one machine. There is one wiring of a run, the controller's: the run's pods exactly as
// the controller renders them, run as local processes over a nats-server (services/controller/pods), the
// data volume a folder under --out. The learner runs the cold start (SFT) itself, the coordinator's
// evaluator evaluates before training, every evaluation.everySteps steps and at the end, and policy
// replicas load the learner's weights through weights_published, as in a cluster. What a local run adds
// is the baseline: the untrained model's held-out pass^k through `parley eval`'s evaluator, before the
// pods start, so the report shows what the cold start and RL each gained. The report keeps the fields
// of the pods report and adds baseline, after_sft and final summaries, summary.md and reward-curve.svg.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Logger } from '../../core/logger.js';
import { writeRunReport, type EvalSummary, type IterationRecord, type RunReport } from '../../eval/index.js';
import { runPods, type PodsReport } from '../pods/pods-run.js';
import type { RunSpec } from '../run-spec.js';
import { runEvaluation } from './eval-run.js';
import { Progress } from './progress.js';

export interface LocalRunOptions {
  out: string;
  /** A NATS server to use instead of starting one. */
  natsUrl?: string;
  resume: boolean;
  python?: string;
  logger: Logger;
  /** Aborting deletes the pods (the learner checkpoints every step); --resume continues. */
  signal?: AbortSignal;
  /** One-line status sink (progress display). */
  progress?: Progress;
  /** SIGKILL the first pod of a group after a step (crash rehearsal). */
  kills?: { group: 'sandbox' | 'userSimulator' | 'policy' | 'learner' | 'rollout' | 'coordinator'; afterStep: number }[];
  /** PersistentVolumeClaims bound to folders of this machine (claim → folder). */
  claims?: Record<string, string>;
  timeoutMs?: number;
}

interface RunState {
  baseline?: EvalSummary;
  wallSeconds: number;
}

/** The summary of an eval_completed event. */
function summaryOf(e: Record<string, unknown>): EvalSummary {
  const passk = (e.passk ?? {}) as Record<string, number>;
  return {
    pass1: Number(e.passRate),
    pass1_ci: (e.passRateInterval as [number, number] | undefined) ?? [Number(e.passRate), Number(e.passRate)],
    passk,
    tasks: Number(e.tasks),
    // Episodes (tasks × k), as summarizePass counts them.
    trials: Number(e.episodes),
  };
}

/** Runs the spec locally. Resolves the report (also written to `out`). Rejects naming what failed (a pod's log lines, the spec's field). */
export async function runLocal(spec: RunSpec, o: LocalRunOptions): Promise<RunReport> {
  const started = Date.now();
  const out = resolve(o.out);
  const statePath = join(out, 'run-state.json');
  const progress = o.progress ?? new Progress(false);
  if (!o.resume && existsSync(statePath)) {
    throw new Error(`${out} holds an earlier run (run-state.json); pass --resume to continue it or choose another --out`);
  }
  mkdirSync(out, { recursive: true });
  const state: RunState = o.resume && existsSync(statePath) ? (JSON.parse(readFileSync(statePath, 'utf8')) as RunState) : { wallSeconds: 0 };
  const save = () => writeFileSync(statePath, JSON.stringify(state, null, 2));
  save();

  // The baseline is the model before the cold start; without one, the evaluation before training is it.
  // (`parley eval` runs the builtin model itself; a Hugging Face model's baseline is its evaluation before training.)
  if (spec.sft.enabled && spec.model.name === 'builtin' && !state.baseline) {
    progress.log('held-out evaluation of the untrained model (baseline), with the evaluator of `parley eval`');
    const r = await runEvaluation(spec, { k: spec.evaluation.k, out: join(out, 'baseline'), python: o.python, logger: o.logger, progress });
    const p1 = r.pass['1']!;
    state.baseline = { pass1: p1.value, pass1_ci: [p1.low, p1.high], passk: Object.fromEntries(Object.entries(r.pass).map(([k, e]) => [k, e.value])), tasks: r.tasks, trials: r.tasks * r.k };
    progress.log(`baseline: pass^1 ${p1.value.toFixed(3)} [${p1.low.toFixed(3)}, ${p1.high.toFixed(3)}] on ${r.tasks} held-out tasks`);
    state.wallSeconds += (Date.now() - started) / 1000;
    save();
  }
  const podsStarted = Date.now();
  let pods: PodsReport;
  try {
    // A shared volume (a folder under --out) keeps checkpoints and weights across --resume, as a PVC does.
    pods = await runPods(
      spec,
      { out, natsUrl: o.natsUrl, python: o.python, controller: { sharedVolumeClaim: 'data' }, claims: o.claims, kills: o.kills, timeoutMs: o.timeoutMs, logger: o.logger, progress, signal: o.signal },
    );
  } finally {
    state.wallSeconds += (Date.now() - podsStarted) / 1000;
    save();
  }
  const final = summaryOf(pods.final!);
  const beforeTraining = pods.before_training ? summaryOf(pods.before_training) : null;
  const iterations: IterationRecord[] = pods.iterations.map((i) => ({ ...i }));
  const report: RunReport = {
    ...pods,
    run: spec.name,
    seed: spec.seed,
    spec,
    baseline: state.baseline ?? beforeTraining ?? final,
    after_sft: spec.sft.enabled ? beforeTraining : null,
    final,
    iterations,
    wall_seconds: state.wallSeconds,
  };
  writeRunReport(out, report);
  return report;
}
