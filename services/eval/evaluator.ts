// Held-out evaluation: k episodes per task through the same episode driver as training, scored by the
// sandbox, summarised as pass^k with bootstrap intervals. One function for every wiring: `parley run`,
// `parley eval` and the cluster's run coordinator call it with the ports they have.

import { create } from '@bufbuild/protobuf';
import { ParleyError } from '../core/errors.js';
import { RolloutTaskSchema } from '../core/gen/parley/v1/rollout_pb.js';
import { backoffDelay, sleep } from '../core/retry.js';
import { deriveSeed } from '../core/seed.js';
import { runEpisode, TransientEpisodeError, type EpisodeOptions, type TaskInfo } from '../rollout/episode.js';
import type { EpisodePorts } from '../rollout/ports.js';
import { COMPONENT_NAMES, RELEASE_TASKS_FILE, rewardBasis, unscoredComponents, type Tau2Task } from '../sandbox/index.js';
import { passReport, type PassReport } from './passk.js';

export interface EvalOptions {
  run: string;
  domain: string;
  taskIds: string[];
  k: number;
  horizon: number;
  mode: 'mua' | 'tau2';
  concurrency: number;
  /** Its `signal` aborts the evaluation (evaluate then rejects with EpisodeAbortedError). */
  episode: EpisodeOptions;
  seed: number;
  /** The task file the sandbox serves the tasks from (ListTasks' tasks_file), reported with the result. */
  tasksFile?: string;
  /** A label that makes conversation ids unique per evaluation (e.g. `after-sft`). */
  label: string;
  /** The lowest policy version the policy may answer with (0: any). */
  minPolicyVersion?: number;
  /**
   * Attempts of one episode whose actor calls failed transiently beyond their retries (a policy still
   * loading the version asked for, an actor being replaced); each is a new conversation. Default 1.
   */
  episodeAttempts?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface EvalResult {
  report: PassReport;
  meanReward: number;
  episodes: number;
  terminations: Record<string, number>;
  /** The task file the tasks came from, when the caller knew it. */
  tasksFile?: string;
  /** The reward components in the basis of any evaluated task (every one of them computed). */
  basis: string[];
}

/**
 * The union of the evaluated tasks' reward bases. Rejects with failed_precondition (field data.tasksFile)
 * when a basis holds a component Evaluate would leave out: pass^k would then silently measure less than
 * the tasks ask (tau2's HEAD retail tasks are judged on NL_ASSERTION; without a judge they become DB-only).
 * A judge would lift the refusal; there is no judge service yet.
 */
export function checkedBasis(info: Map<string, TaskInfo>, taskIds: string[], tasksFile?: string): string[] {
  const basis = new Set<string>();
  const unscored: string[] = [];
  for (const id of taskIds) {
    let task: Tau2Task;
    try {
      task = JSON.parse(info.get(id)?.taskJson || '{}') as Tau2Task;
    } catch (e) {
      throw new ParleyError('invalid_argument', `task '${id}': task_json is not JSON (${(e as Error).message})`, { field: 'task_json' });
    }
    for (const c of rewardBasis(task)) basis.add(c);
    if (unscoredComponents(task).length > 0) unscored.push(id);
  }
  if (unscored.length > 0) {
    const file = tasksFile ? ` of ${tasksFile}` : '';
    throw new ParleyError(
      'failed_precondition',
      `data.tasksFile: ${unscored.length} of ${taskIds.length} evaluated tasks${file} (e.g. ${unscored.slice(0, 3).join(', ')}) have NL_ASSERTION in their reward_basis, ` +
        `which needs an LLM judge, and none is configured: their pass^k would be scored without it. Evaluate the release task set ` +
        `(${RELEASE_TASKS_FILE}, basis DB and COMMUNICATE, the default where the domain folder holds it) or tasks whose basis leaves NL_ASSERTION out`,
      { field: 'data.tasksFile' },
    );
  }
  return COMPONENT_NAMES.filter((c) => basis.has(c));
}

/**
 * Runs the evaluation. Rejects before any episode when a task's reward basis holds a component that cannot
 * be computed (see checkedBasis), when an actor fails in a way the episode driver cannot absorb (a transient
 * failure that outlived its retries and `episodeAttempts`), or with EpisodeAbortedError when aborted.
 */
export async function evaluate(ports: EpisodePorts, info: Map<string, TaskInfo>, o: EvalOptions): Promise<EvalResult> {
  const basis = checkedBasis(info, o.taskIds, o.tasksFile);
  const jobs: { taskId: string; sample: number }[] = [];
  for (const taskId of o.taskIds) for (let s = 0; s < o.k; s++) jobs.push({ taskId, sample: s });
  const successes = new Map<string, number>();
  const terminations: Record<string, number> = {};
  const attempts = Math.max(1, o.episodeAttempts ?? 1);
  let rewardSum = 0;
  let done = 0;
  let next = 0;
  const episode = async (job: { taskId: string; sample: number }) => {
    const task = create(RolloutTaskSchema, {
      run: o.run,
      taskId: job.taskId,
      domain: o.domain,
      groupId: `eval-${o.label}-${job.taskId}`,
      sampleIndex: job.sample,
      groupSize: o.k,
      horizon: o.horizon,
      mode: o.mode,
      minPolicyVersion: BigInt(o.minPolicyVersion ?? 0),
      // Unrelated streams per episode: a seed shared by the tasks of one sample index makes every
      // task draw the same numbers at the same turn, and pass^k then measures one draw, not k.
      seed: deriveSeed(o.seed, o.label, job.taskId, job.sample),
    });
    for (let attempt = 1; ; attempt++) {
      try {
        return await runEpisode(ports, task, info.get(job.taskId)!, o.episode, attempt);
      } catch (e) {
        if (!(e instanceof TransientEpisodeError) || attempt >= attempts) throw e;
        await sleep(backoffDelay(attempt, 500, 10_000), o.episode.signal);
      }
    }
  };
  const worker = async () => {
    while (next < jobs.length) {
      const job = jobs[next++]!;
      const t = await episode(job);
      const r = t.reward ?? 0;
      rewardSum += r;
      if (r >= 1) successes.set(job.taskId, (successes.get(job.taskId) ?? 0) + 1);
      const term = String(t.termination ?? 0);
      terminations[term] = (terminations[term] ?? 0) + 1;
      o.onProgress?.(++done, jobs.length);
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.concurrency, jobs.length) }, worker));
  const report = passReport(
    o.taskIds.map((id) => ({ taskId: id, successes: successes.get(id) ?? 0, n: o.k })),
    o.k,
    o.seed,
  );
  return { report, meanReward: rewardSum / Math.max(1, jobs.length), episodes: jobs.length, terminations, basis, ...(o.tasksFile ? { tasksFile: o.tasksFile } : {}) };
}
