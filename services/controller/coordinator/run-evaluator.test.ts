// The RunEvaluator on the in-process bus with an evaluator double: which steps it evaluates as the
// learner advances, the policy version and horizon it asks for, eval_completed once per step across
// restarts, an interrupted evaluation rerun, and a finished one that a crash left unpublished.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createMemoryBus, type Bus, type KvBucket } from '../../core/bus/index.js';
import { createLogger } from '../../core/logger.js';
import { Registry } from '../../core/metrics.js';
import { runStreamConfigs, runSubjects } from '../../core/run-subjects.js';
import { evalCompletedMsgId, passReport, type EvalCompletedEvent, type EvalOptions, type EvalResult, type HeldOutSettings } from '../../eval/index.js';
import type { LearnerRunState } from '../../learner/index.js';
import type { EpisodePorts } from '../../rollout/ports.js';
import { EVAL_STATE_KEY, type EvalRunState } from './eval-ledger.js';
import { publishLearnerStarted } from '../testing/learner-started.js';
import { RunEvaluator } from './run-evaluator.js';

const RUN = 'eval-test';
const logger = createLogger('run-evaluator-test', 'silent');
const SETTINGS: HeldOutSettings = {
  run: RUN,
  domain: 'mock',
  split: 'test',
  k: 2,
  maxTasks: 0,
  everySteps: 2,
  steps: 4,
  horizons: [3, 5],
  horizonEverySteps: 3,
  mode: 'mua',
  seed: 7,
  concurrency: 4,
  episode: { maxSteps: 50, maxToolErrors: 3, maxContextTokens: 2048, temperature: 0.5, topP: 0.9, maxTokensPerTurn: 64 },
};

let bus: Bus;
let state: KvBucket;
beforeEach(async () => {
  bus = createMemoryBus();
  await bus.ensureStream(runStreamConfigs(RUN).events);
  state = await bus.kv(runSubjects(RUN).stateBucket, { history: 5 });
});
afterEach(() => bus.close());

/** Only listTasks is reached: the evaluator double runs no episode. */
const ports = {
  sandbox: { listTasks: async () => ({ tasks: ['t1', 't2', 't3'].map((id) => ({ id, scenario: `s-${id}`, taskJson: '{}' })) }) },
} as unknown as EpisodePorts;

async function learnerAt(step: number, policyVersion = step): Promise<void> {
  const s: LearnerRunState = { step, policyVersion, horizon: 3, horizonStage: 0, updatedAt: new Date().toISOString() };
  await state.put('learner', new TextEncoder().encode(JSON.stringify(s)));
}

async function until<T>(fn: () => T | Promise<T>, what: string, ms = 5000): Promise<NonNullable<T>> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Every eval_completed stored in the events stream (dedup applied), oldest first. */
async function evalEvents(): Promise<EvalCompletedEvent[]> {
  const consumer = await bus.consumer({ stream: runSubjects(RUN).eventsStream, durable: `read-${Math.random().toString(36).slice(2)}`, filterSubject: runSubjects(RUN).event('eval_completed'), ackWaitMs: 30_000, maxDeliver: 1, maxAckPending: 100 });
  const out: EvalCompletedEvent[] = [];
  for (;;) {
    const m = await consumer.next({ expiresMs: 1000 });
    if (!m) break;
    out.push(JSON.parse(new TextDecoder().decode(m.data)));
    m.ack();
  }
  await consumer.delete();
  return out;
}

async function ledger(): Promise<EvalRunState | undefined> {
  const e = await state.get(EVAL_STATE_KEY);
  return e ? JSON.parse(new TextDecoder().decode(e.value)) : undefined;
}

/** An evaluator double: every task solved in `successes` of k samples; `hold` keeps a call open until released. */
function evaluatorDouble(successes = 1) {
  const calls: EvalOptions[] = [];
  let hold: { step: number; release?: () => void } | undefined;
  const fn = async (_ports: EpisodePorts, info: Map<string, unknown>, o: EvalOptions): Promise<EvalResult> => {
    calls.push(o);
    expect([...info.keys()]).toEqual(o.taskIds);
    if (hold && o.label.endsWith(`-${hold.step}`)) {
      await new Promise<void>((resolve, reject) => {
        hold!.release = resolve;
        o.episode.signal?.addEventListener('abort', () => reject(new Error('episode aborted')), { once: true });
      });
    }
    const report = passReport(o.taskIds.map((taskId) => ({ taskId, successes, n: o.k })), o.k, o.seed);
    return { report, meanReward: successes / o.k, episodes: o.taskIds.length * o.k, terminations: { '1': o.taskIds.length * o.k }, basis: ['DB'] };
  };
  return { fn, calls, holdAt: (step: number) => (hold = { step }), released: () => hold?.release };
}

const start = async (evaluate: ReturnType<typeof evaluatorDouble>['fn'], registry = new Registry()) => {
  const e = new RunEvaluator(SETTINGS, { pollIntervalMs: 20 }, { bus, logger, registry, ports, evaluate, random: () => 0 });
  await e.start();
  return e;
};

describe('RunEvaluator', () => {
  it('evaluates version 0 before training once the learner has published, settles beforeTrainDone, and never again after a restart', async () => {
    const double = evaluatorDouble(1);
    const e = new RunEvaluator({ ...SETTINGS, beforeTrain: true }, { pollIntervalMs: 20 }, { bus, logger, registry: new Registry(), ports, evaluate: double.fn, random: () => 0 });
    await e.start();
    let settled = false;
    void e.beforeTrainDone().then(() => (settled = true));
    await learnerAt(0);
    await new Promise((r) => setTimeout(r, 300));
    // No weights published yet: nothing is evaluated (no replica serves) and training stays held.
    expect(double.calls).toHaveLength(0);
    expect(settled).toBe(false);
    await publishLearnerStarted(bus, RUN);
    await until(() => settled, 'the evaluation before training');
    const events = await evalEvents();
    expect(events.map((x) => [x.step, x.policyVersion, x.final])).toEqual([[0, 0, false]]);
    expect(double.calls[0]!.label).toBe('before-training-0');
    expect(await ledger()).toMatchObject({ initial: true, evaluated: 0 });
    await e.stop();
    const again = new RunEvaluator({ ...SETTINGS, beforeTrain: true }, { pollIntervalMs: 20 }, { bus, logger, registry: new Registry(), ports, evaluate: double.fn, random: () => 0 });
    await again.start();
    await again.beforeTrainDone();
    await new Promise((r) => setTimeout(r, 200));
    expect(double.calls).toHaveLength(1);
    await again.stop();
  });

  it('skips the evaluation before training when the learner is already past step 0', async () => {
    const double = evaluatorDouble(1);
    await publishLearnerStarted(bus, RUN);
    await learnerAt(1);
    const e = new RunEvaluator({ ...SETTINGS, beforeTrain: true }, { pollIntervalMs: 20 }, { bus, logger, registry: new Registry(), ports, evaluate: double.fn, random: () => 0 });
    await e.start();
    await e.beforeTrainDone();
    expect(await ledger()).toMatchObject({ initial: true });
    expect(double.calls.filter((c) => c.label.startsWith('before-training'))).toHaveLength(0);
    await e.stop();
  });

  it('evaluates every everySteps steps and after the last one with the learner\'s version, publishing eval_completed once each', async () => {
    const double = evaluatorDouble(1);
    const registry = new Registry();
    const e = await start(double.fn, registry);
    await learnerAt(1);
    await new Promise((r) => setTimeout(r, 100));
    expect(double.calls).toHaveLength(0);
    await learnerAt(2, 5);
    await until(() => e.status().evaluated === 2, 'the evaluation of step 2');
    await learnerAt(4, 9);
    await until(() => e.done, 'the final evaluation');
    await e.stop();
    await e.stop();
    expect(e.state).toBe('stopped');

    expect(double.calls.map((c) => ({ label: c.label, minPolicyVersion: c.minPolicyVersion, horizon: c.horizon, seed: c.seed }))).toEqual([
      { label: 'step-2-2', minPolicyVersion: 5, horizon: 3, seed: 9 },
      { label: 'final-4', minPolicyVersion: 9, horizon: 5, seed: 11 },
    ]);
    expect(double.calls[0]!.episode).toMatchObject({ ...SETTINGS.episode, worker: 'eval' });
    const events = await evalEvents();
    expect(events.map((ev) => [ev.step, ev.final, ev.policyVersion])).toEqual([[2, false, 5], [4, true, 9]]);
    expect(events[1]).toMatchObject({ run: RUN, passRate: 0.5, passk: { '1': 0.5, '2': 0 }, tasks: 3, episodes: 6, domain: 'mock', split: 'test' });
    expect(await ledger()).toMatchObject({ evaluated: 4 });
    const body = await registry.metrics();
    expect(body).toContain('parley_coordinator_eval_pass_rate_ratio 0.5');
    expect(body).toContain('parley_coordinator_eval_step_number 4');
    expect(body).toContain('parley_coordinator_eval_seconds');
  });

  it('a restarted evaluator neither repeats a published step nor skips the next', async () => {
    const first = evaluatorDouble();
    const a = await start(first.fn);
    await learnerAt(2);
    await until(() => a.status().evaluated === 2, 'step 2');
    await a.stop();

    const second = evaluatorDouble();
    const b = await start(second.fn);
    await new Promise((r) => setTimeout(r, 100));
    expect(second.calls).toHaveLength(0);
    await learnerAt(4);
    await until(() => b.done, 'the final evaluation');
    await b.stop();
    expect(second.calls.map((c) => c.label)).toEqual(['final-4']);
    expect((await evalEvents()).map((ev) => ev.step)).toEqual([2, 4]);
  });

  it('reruns an evaluation a stop interrupted, with the version it began with', async () => {
    const first = evaluatorDouble();
    first.holdAt(2);
    const a = await start(first.fn);
    await learnerAt(2, 2);
    await until(() => a.status().evaluating === 2 && first.calls.length === 1, 'step 2 running');
    await a.stop();
    expect(await ledger()).toMatchObject({ evaluated: 0, running: { step: 2, policyVersion: 2 } });
    expect(await evalEvents()).toEqual([]);

    await learnerAt(3, 3);
    const second = evaluatorDouble();
    const b = await start(second.fn);
    await until(() => b.status().evaluated === 2, 'step 2 rerun');
    expect(second.calls.map((c) => [c.label, c.minPolicyVersion])).toEqual([['step-2-2', 2]]);
    await b.stop();
    expect((await evalEvents()).map((ev) => ev.step)).toEqual([2]);
  });

  it('publishes an evaluation that finished before a crash once, without running it again', async () => {
    const event = { run: RUN, step: 2, final: false, policyVersion: 2, passRate: 0.25 } as EvalCompletedEvent;
    // The crash came after the event was published and before the ledger said so: it is published again, and dropped as a duplicate.
    await bus.publish(runSubjects(RUN).event('eval_completed'), new TextEncoder().encode(JSON.stringify(event)), { msgId: evalCompletedMsgId(RUN, 2) });
    await state.put(EVAL_STATE_KEY, new TextEncoder().encode(JSON.stringify({ evaluated: 2, pending: event, updatedAt: new Date().toISOString() } satisfies EvalRunState)));
    await learnerAt(3);
    const double = evaluatorDouble();
    const e = await start(double.fn);
    await until(async () => (await ledger())?.pending === undefined, 'the pending event published');
    await new Promise((r) => setTimeout(r, 100));
    await e.stop();
    expect(double.calls).toHaveLength(0);
    expect((await evalEvents()).map((ev) => [ev.step, ev.passRate])).toEqual([[2, 0.25]]);
  });

  it('starts an evaluation once the policy serves the version asked for', async () => {
    let served = 1;
    const double = evaluatorDouble();
    const e = new RunEvaluator(SETTINGS, { pollIntervalMs: 20 }, { bus, logger, registry: new Registry(), ports, evaluate: double.fn, servedVersion: async () => served });
    await e.start();
    await learnerAt(2, 3);
    await until(async () => (await ledger())?.running?.step === 2, 'step 2 begun');
    await new Promise((r) => setTimeout(r, 100));
    expect(double.calls).toHaveLength(0);
    served = 3;
    await until(() => e.status().evaluated === 2, 'step 2 evaluated');
    await e.stop();
    expect(double.calls.map((c) => c.minPolicyVersion)).toEqual([3]);
  });

  it('retries a failed evaluation with backoff and reports the error', async () => {
    let failures = 2;
    const double = evaluatorDouble();
    const flaky: typeof double.fn = async (...args) => {
      if (failures-- > 0) throw new Error('policy unavailable');
      return double.fn(...args);
    };
    const e = await start(flaky);
    await learnerAt(2);
    await until(() => e.status().lastError === 'policy unavailable', 'the failure reported');
    await until(() => e.status().evaluated === 2, 'step 2 after retries');
    expect(e.status().lastError).toBeUndefined();
    await e.stop();
    expect((await evalEvents()).map((ev) => ev.step)).toEqual([2]);
  });
});
