// `parley run` on one machine: every actor of a run in this process tree (the PyTorch engine as a child
// process), the embedded bus or a NATS server, cold-start SFT on demonstrations, then GRPO with the
// scripted user, held-out pass^k before and after, a live progress line, /metrics, Ctrl-C checkpoints
// and --resume.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { connectBus } from '../../core/bus/index.js';
import type { Logger } from '../../core/logger.js';
import { metricsRegistry, serveMetrics, type MetricsServer } from '../../core/metrics.js';
import { runSubjects } from '../../core/run-subjects.js';
import { Termination } from '../../core/gen/parley/v1/sandbox_pb.js';
import {
  evalCompletedEvent,
  evalName,
  evaluate,
  heldOutRequest,
  heldOutTasks,
  isEvalStep,
  publishEvalCompleted,
  summarizePass,
  writeRunReport,
  type EvalSummary,
  type IterationRecord,
  type RunReport,
} from '../../eval/index.js';
import { EngineSamplerBackend, Learner, connectTrainer, startEngineProcess, type EngineProcess } from '../../learner/index.js';
import { WeightFollower, loadChatModel, policyMetrics } from '../../policy/index.js';
import { horizonAt } from '../../rollout/horizon.js';
import { ensureRunStreams } from '../../rollout/publisher.js';
import { RolloutWorker } from '../../rollout/worker.js';
import { generateDemonstrations } from '../../sandbox/domains/local/expert.js';
import { TaskFeed, callbackGroupCounter, evaluationSettings, heldOutSettings, taskFeedSettings } from '../coordinator/index.js';
import type { RunSpec } from '../run-spec.js';
import { episodeOptions, startLocalActors } from './actors.js';
import { Progress } from './progress.js';
import { checkLocalSpec, engineConfig, learnerConfig, localPaths, prepareLocalData } from './setup.js';
import { runSft, tokenizeDemonstration } from './sft.js';

export interface LocalRunOptions {
  out: string;
  natsUrl?: string;
  resume: boolean;
  /** Prometheus /metrics port (-1 = off, 0 = any free). */
  metricsPort: number;
  python?: string;
  logger: Logger;
  /** Aborting checkpoints and stops (Ctrl-C). */
  signal?: AbortSignal;
  /** One-line status sink (progress display). */
  progress?: Progress;
}

interface RunState {
  baseline?: EvalSummary;
  after_sft?: EvalSummary | null;
  iterations: IterationRecord[];
  groupsPublished: number;
  wallSeconds: number;
  /** SaveWeights folder of the cold start (baseline Init + SFT), where RL begins. */
  coldStartWeights?: string;
}

/** Runs the spec locally. Resolves the report (also written to `out`). Rejects naming what failed. */
export async function runLocal(spec: RunSpec, o: LocalRunOptions): Promise<RunReport> {
  checkLocalSpec(spec);
  const started = Date.now();
  const paths = localPaths(spec, o.out);
  const progress = o.progress ?? new Progress(false);
  const say = (line: string) => progress.log(line);
  if (!o.resume && existsSync(paths.statePath)) {
    throw new Error(`${paths.out} holds an earlier run (run-state.json); pass --resume to continue it or choose another --out`);
  }
  const state: RunState = o.resume && existsSync(paths.statePath) ? JSON.parse(readFileSync(paths.statePath, 'utf8')) : { iterations: [], groupsPublished: 0, wallSeconds: 0 };
  const saveState = () => writeFileSync(paths.statePath, JSON.stringify({ ...state, wallSeconds: state.wallSeconds + (Date.now() - started) / 1000 }, null, 2));
  await prepareLocalData(spec, paths, say);

  const model = loadChatModel(paths.modelDir);
  const imEnd = model.encode('<|im_end|>');
  const registry = metricsRegistry();
  const closers: (() => Promise<void> | void)[] = [];
  let engine: EngineProcess | undefined;
  try {
    say('starting the PyTorch engine');
    engine = await startEngineProcess({ python: o.python });
    closers.push(() => engine?.stop());
    const trainer = connectTrainer(engine.address);
    closers.push(() => trainer.close());
    const engineCfg = engineConfig(spec, model.vocabSize);

    const bus = await connectBus(o.natsUrl);
    closers.push(() => bus.close());
    await ensureRunStreams(bus, spec.name);
    const sampler = new EngineSamplerBackend(trainer, { stopTokenIds: imEnd, sharedWithTrainer: true, maxBatch: 256 });
    const actors = await startLocalActors({ spec, dataRoot: paths.dataRoot, model, backend: sampler, registry, logger: o.logger });
    closers.push(() => actors.close());
    const { ports, policy: policyClient, domain: local } = actors;
    let metrics: MetricsServer | undefined;
    if (o.metricsPort >= 0) {
      metrics = await serveMetrics(registry, o.metricsPort);
      closers.push(() => metrics?.close());
      say(`metrics on http://localhost:${metrics.port}/metrics`);
    }

    const trainIds = local.splits[spec.data.trainSplit] ?? [];
    const episode = episodeOptions(spec);
    // Held-out evaluation through the cluster's code path (services/eval/held-out.ts): the same steps,
    // request and eval_completed event as the run coordinator's RunEvaluator.
    const evalSettings = heldOutSettings(taskFeedSettings(spec, 'local'), evaluationSettings(spec));
    const heldOut = await heldOutTasks(ports.sandbox, evalSettings);
    const runEval = async (label: string, step: number, policyVersion: number): Promise<EvalSummary> => {
      const evalStarted = Date.now();
      const r = await evaluate(ports, heldOut.info, heldOutRequest(evalSettings, {
        name: label, step, policyVersion, taskIds: heldOut.taskIds, tasksFile: heldOut.tasksFile,
        onProgress: (d, t) => progress.status(`evaluating (${label}): ${d}/${t} episodes`),
      }));
      if (isEvalStep(evalSettings, step)) await publishEvalCompleted(bus, evalCompletedEvent(evalSettings, step, policyVersion, r, (Date.now() - evalStarted) / 1000));
      const terms = Object.entries(r.terminations).map(([k, v]) => `${Termination[Number(k)] ?? k} ${v}`).join(', ');
      say(`held-out ${label} (${heldOut.tasksFile || 'tasks'}, basis ${r.basis.join('+')}): pass^1 ${r.report.pass1.value.toFixed(3)} [${r.report.pass1.low.toFixed(3)}, ${r.report.pass1.high.toFixed(3)}], ${Object.entries(r.report.passk).map(([k, e]) => `pass^${k} ${e.value.toFixed(3)}`).join(' ')} (${terms})`);
      return summarizePass(r.report);
    };

    // ---- cold start ----------------------------------------------------------------------------
    const probe = new Learner(learnerConfig(spec, paths, engineCfg, ''), { bus, trainer, logger: o.logger, registry });
    const existing = await probe.store.latest();
    if (!existing && !state.coldStartWeights) {
      // SFT warms up and decays its own learning rate (cosine); the learner's Init later starts RL afresh.
      const sftCount = typeof spec.sft.demonstrations === 'number' ? spec.sft.demonstrations : 0;
      const sftSteps = spec.sft.enabled ? Math.ceil(sftCount / spec.sft.batchSize) * spec.sft.epochs : 0;
      const sftEngine = { ...engineCfg, warmup_steps: Math.min(100, Math.ceil(sftSteps / 10)), total_steps: sftSteps, min_lr_ratio: 0.1 };
      await trainer.init({ model: 'builtin', configJson: JSON.stringify(sftEngine), seed: BigInt(spec.seed) });
      state.baseline = await runEval('baseline', 0, 0);
      saveState();
      state.after_sft = null;
      if (spec.sft.enabled) {
        const demos = await generateDemonstrations({ domainDir: paths.domainDir, count: sftCount, skipAskRate: spec.sft.expertSkipAskRate, seed: spec.seed });
        say(`SFT on ${demos.demonstrations.length} demonstrations from an imperfect expert (solves ${(demos.solvedShare * 100).toFixed(0)}%; skips asking ${(spec.sft.expertSkipAskRate * 100).toFixed(0)}% of the time)`);
        const tokenized = demos.demonstrations.map((d) => tokenizeDemonstration(model, d.messages as never));
        const loss = await runSft(trainer, tokenized, {
          epochs: spec.sft.epochs, learningRate: spec.sft.learningRate, microBatchTokens: spec.algorithm.microBatchTokens, batchSequences: spec.sft.batchSize, maxGradNorm: 1, seed: spec.seed,
          onProgress: (d, t, l) => progress.status(`SFT ${d}/${t} batches, loss ${l.toFixed(3)}`),
        });
        say(`SFT done: final epoch loss ${loss.toFixed(3)}`);
        state.after_sft = await runEval('after SFT', 0, 0);
      }
      // The learner starts from these weights (its checkpoint 0 holds them).
      const saved = await trainer.saveWeights({ path: paths.coldStartDir, version: 0n });
      state.coldStartWeights = saved.path;
      saveState();
    } else {
      say(existing ? `resuming at learner step ${existing.step}` : "resuming after the cold start");
    }

    // ---- RL ------------------------------------------------------------------------------------
    const learner = new Learner(learnerConfig(spec, paths, engineCfg, state.coldStartWeights ?? ''), { bus, trainer, logger: o.logger, registry });
    await learner.start();
    closers.push(() => learner.stop());
    // Weight sync as in a cluster: the policy follows the learner's weights_published through its own
    // durable consumer, starting with the newest (after a resume, a version above 0). The engine that
    // trains also samples, so a load only records the version.
    const weights = new WeightFollower({ run: spec.name, replica: 'local-policy' }, { bus, policy: policyClient, logger: o.logger, metrics: policyMetrics(registry) });
    await weights.start();
    closers.push(() => weights.stop({ deleteDurable: true }));
    const workers: RolloutWorker[] = [];
    for (let i = 0; i < Math.max(1, spec.actors.rollout.replicas); i++) {
      const w = new RolloutWorker(
        { run: spec.name, name: `rollout-${i}`, concurrency: spec.rollout.concurrency, ackWaitMs: 120_000, maxDeliver: 5, drainTimeoutMs: 10_000, episode: { ...episode, worker: `rollout-${i}` } },
        { bus, ports, logger: o.logger, registry },
      );
      await w.start();
      workers.push(w);
    }
    closers.push(() => Promise.all(workers.map((w) => w.stop())).then(() => undefined));
    const subjects = runSubjects(spec.name);
    // The run coordinator's task feed (one implementation with the cluster's): the seeded group sequence,
    // continued from run-state.json's counter after --resume.
    const feed = new TaskFeed(taskFeedSettings(spec, 'local'), trainIds, { bus, counter: callbackGroupCounter(() => state.groupsPublished, (n) => (state.groupsPublished = n)) });
    const topUp = async (step: number) => {
      await feed.topUp({ step, policyVersion: learner.status().policyVersion });
    };
    const tokensMetric = async () => {
      const m = await registry.getSingleMetric('parley_rollout_tokens_total')?.get();
      return m?.values.find((v) => v.labels.kind === 'all')?.value ?? 0;
    };
    let step = learner.status().step;
    let lastTokens = await tokensMetric();
    let lastTime = Date.now();
    while (step < spec.algorithm.steps && !o.signal?.aborted) {
      await topUp(step);
      const target = step + 1;
      const stepStarted = Date.now();
      const publishedAtStart = state.groupsPublished;
      while (!o.signal?.aborted) {
        try {
          await learner.waitForStep(target, 1000);
          break;
        } catch (e) {
          if ((e as { code?: string }).code !== 'deadline_exceeded') throw e;
          await topUp(step);
          const st = learner.status();
          if (st.state === 'stopped') throw new Error(`the learner stopped at step ${st.step}: ${st.lastError ?? 'unknown reason'}`);
          if (state.groupsPublished - publishedAtStart > 200 * spec.algorithm.groupsPerStep) {
            throw new Error(
              `step ${target}: ${state.groupsPublished - publishedAtStart} groups rolled out without enough informative ones ` +
                `(${st.zeroVarianceGroups} had equal rewards in all samples); the policy after the cold start may solve nothing — ` +
                'strengthen the cold start (sft.demonstrations, sft.epochs) or set algorithm.dropZeroVarianceGroups: false',
            );
          }
          const pending = (await bus.streamInfo(subjects.tasksStream)).messages;
          progress.status(`step ${target}/${spec.algorithm.steps} | tasks queued ${pending} | learner buffered ${st.buffered}, consumed ${st.consumed} | zero-variance groups dropped ${st.zeroVarianceGroups} | stale ${st.droppedStale}`);
        }
      }
      if (o.signal?.aborted) break;
      step = target;
      const st = learner.status();
      // The next step's tasks ask for the new version: publish them once the policy serves it.
      await weights.waitForVersion(st.policyVersion, 60_000);
      const now = Date.now();
      const tokens = await tokensMetric();
      const it: IterationRecord = {
        step, reward_mean: st.rewardMean, pass1: null, episodes: spec.algorithm.groupsPerStep * spec.algorithm.groupSize,
        tokens_per_s: (tokens - lastTokens) / Math.max(0.001, (now - lastTime) / 1000), staleness: st.droppedStale, horizon: st.horizon || horizonAt(spec.horizon, step),
        seconds: (now - stepStarted) / 1000, zero_variance_groups: st.zeroVarianceGroups,
      };
      lastTokens = tokens;
      lastTime = now;
      if (isEvalStep(evalSettings, step) && step < spec.algorithm.steps) it.pass1 = (await runEval(evalName(evalSettings, step), step, st.policyVersion)).pass1;
      state.iterations.push(it);
      saveState();
      say(`step ${step}/${spec.algorithm.steps} | reward ${it.reward_mean.toFixed(3)} | ${it.tokens_per_s.toFixed(0)} tok/s | horizon ${it.horizon} | stale dropped ${st.droppedStale} | zero-variance groups ${st.zeroVarianceGroups}${it.pass1 !== null ? ` | held-out pass^1 ${it.pass1.toFixed(3)}` : ''}`);
    }
    if (o.signal?.aborted) {
      await Promise.all(workers.map((w) => w.stop()));
      await learner.stop();
      saveState();
      say(`stopped at step ${learner.status().step}; checkpoint in ${paths.checkpointDir}; continue with --resume`);
      throw Object.assign(new Error('interrupted'), { interrupted: true });
    }
    await Promise.all(workers.map((w) => w.stop()));
    const final = await runEval('final', step, learner.status().policyVersion);
    const last = state.iterations.at(-1);
    if (last) last.pass1 = final.pass1;
    const report: RunReport = {
      run: spec.name,
      seed: spec.seed,
      spec,
      baseline: state.baseline ?? final,
      after_sft: state.after_sft ?? null,
      final,
      iterations: state.iterations,
      wall_seconds: state.wallSeconds + (Date.now() - started) / 1000,
    };
    writeRunReport(paths.out, report);
    saveState();
    return report;
  } finally {
    for (const c of closers.reverse()) {
      try {
        await c();
      } catch (e) {
        o.logger.warn({ err: e }, 'error while shutting down');
      }
    }
  }
}
