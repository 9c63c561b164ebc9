// Held-out evaluation in a cluster against a real nats-server: `serveCoordinator` with an evaluation
// block (everySteps 2, steps 4) reaches the run's Sandbox (generated local domain), scripted user
// simulator and Policy (a deterministic backend double) over NATS request-reply while a simulated
// learner advances; it is closed and started again between the steps. eval_completed reaches the events
// stream once for step 2 and once for step 4, each evaluated once and with the learner's policy version,
// and the controller's event tracker turns it into the status's passRate.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectBus, type Bus, type KvBucket } from '../services/core/bus/index.js';
import { serveOverBus } from '../services/core/bus-rpc.js';
import type { CallContext } from '../services/core/grpc.js';
import { createLocalClient } from '../services/core/local-client.js';
import { createLogger } from '../services/core/logger.js';
import { Registry } from '../services/core/metrics.js';
import { runSubjects } from '../services/core/run-subjects.js';
import { Policy, type GenerateRequest } from '../services/core/gen/parley/v1/policy_pb.js';
import { Sandbox } from '../services/core/gen/parley/v1/sandbox_pb.js';
import { UserSimulator } from '../services/core/gen/parley/v1/usersim_pb.js';
import { realClock } from '../services/controller/clock.js';
import { publishLearnerStarted } from '../services/controller/testing/learner-started.js';
import { EVAL_STATE_KEY, serveCoordinator, type EvalRunState, type RunningCoordinator } from '../services/controller/coordinator/index.js';
import { runMetrics } from '../services/controller/metrics.js';
import { RunEventsTracker } from '../services/controller/run-events.js';
import { computeStatus } from '../services/controller/run-status.js';
import type { EvalCompletedEvent } from '../services/eval/index.js';
import type { LearnerRunState } from '../services/learner/index.js';
import { createPolicyService, loadChatModel, policyMetrics, type PolicyBackend } from '../services/policy/index.js';
import { ensureRunStreams } from '../services/rollout/publisher.js';
import { generateLocalDomain } from '../services/sandbox/domains/local/index.js';
import { writeLocalModelFolder } from '../services/sandbox/domains/local-model/index.js';
import { loadDomains, resolveSandboxConfig, SandboxService } from '../services/sandbox/index.js';
import { UserSimulatorService, parseUserSimConfig } from '../services/usersim/index.js';
import { haveNatsServer, startNatsServer, type NatsServer } from './fixtures/nats-server.js';

const RUN = 'coord-eval';
const EVAL_TASKS = 3;
const K = 2;
const logger = createLogger('coordinator-eval-test', 'silent');

async function until<T>(fn: () => T | Promise<T>, what: string, ms = 60_000): Promise<NonNullable<T>> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

(haveNatsServer() ? describe : describe.skip)('held-out evaluation by the run coordinator (real nats-server)', () => {
  let nats: NatsServer;
  let bus: Bus;
  let state: KvBucket;
  let root: string;
  let loadVersion: (v: number) => Promise<unknown>;
  /** Every Generate the policy answered or refused: conversation (without the attempt) and the version asked for. */
  const generations: { conversation: string; minPolicyVersion: number }[] = [];
  const closers: (() => Promise<unknown> | unknown)[] = [];

  beforeAll(async () => {
    nats = await startNatsServer();
    bus = await connectBus(nats.url);
    await ensureRunStreams(bus, RUN);
    // The learner has started (the coordinator publishes no task before its first weights).
    await publishLearnerStarted(bus, RUN);
    state = await bus.kv(runSubjects(RUN).stateBucket, { history: 5 });
    root = mkdtempSync(join(tmpdir(), 'parley-coord-eval-'));
    const domainDir = join(root, 'local');
    generateLocalDomain({ seed: 3, trainTasks: 20, evalTasks: 6, customers: 30, outDir: domainDir });
    const model = loadChatModel((await writeLocalModelFolder(domainDir, join(root, 'model'))).dir);
    const registry = new Registry();

    const sbConfig = resolveSandboxConfig({ dataDir: root, domains: [{ name: 'local', dataDir: domainDir }], metricsPort: -1 });
    const sandbox = new SandboxService(sbConfig, loadDomains(sbConfig), registry);
    closers.push(() => sandbox.stop());
    const users = new UserSimulatorService({ config: parseUserSimConfig({ mode: 'scripted' }), logger, registry });
    closers.push(() => users.close());
    // A deterministic sampler: every reply is a plain sentence of domain words, then end of turn.
    const reply = [...model.encode('please tell me your order id'), ...model.encode('<|im_end|>')];
    const backend: PolicyBackend = {
      kind: 'double',
      generate: async () => ({ tokenIds: reply, logprobs: reply.map(() => -0.5), finishReason: 'stop' }),
      loadFullWeights: async () => undefined,
    };
    const service = createPolicyService({
      config: {
        modelName: 'builtin', maxContextTokens: 4096, defaultMaxTokens: 64, enableThinking: false, adapterPrefix: 'policy', keepAdapters: 2,
        initialPolicyVersion: 0, prefixCacheConversations: 1000, prefixCacheTokens: 1_000_000, driftCheckRate: 0,
      },
      model,
      backend,
      metrics: policyMetrics(registry),
      logger,
    });
    const recording = {
      ...service,
      generate: (req: GenerateRequest, ctx: CallContext) => {
        generations.push({ conversation: req.conversationId.split('#')[0]!, minPolicyVersion: Number(req.minPolicyVersion) });
        return service.generate(req, ctx);
      },
    };
    const local = createLocalClient(Policy, service);
    loadVersion = (v) => local.loadWeights({ version: BigInt(v), uri: `/weights/v${v}`, kind: 'full' });
    for (const served of [
      await serveOverBus(bus, Sandbox, sandbox.impl, { run: RUN }),
      await serveOverBus(bus, UserSimulator, users as never, { run: RUN }),
      await serveOverBus(bus, Policy, recording as never, { run: RUN }),
    ]) closers.push(() => served.close());
  }, 60_000);

  afterAll(async () => {
    for (const c of closers.reverse()) await c();
    await bus?.close();
    await nats?.cleanup();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  const learnerAt = (step: number) => {
    const s: LearnerRunState = { step, policyVersion: step, horizon: 3, horizonStage: 0, updatedAt: new Date().toISOString() };
    return state.put('learner', new TextEncoder().encode(JSON.stringify(s)));
  };
  const options = () => ({
    run: RUN, domain: 'local', trainSplit: 'train', groupSize: 2, groupsPerStep: 1, steps: 4, horizons: [3], seed: 1, pollIntervalMs: 100,
    busUrl: nats.url, metricsPort: -1,
    evaluation: { split: 'test', k: K, maxTasks: EVAL_TASKS, everySteps: 2, concurrency: 4, maxTokensPerTurn: 16, maxContextTokens: 4096 },
  });
  /** Every eval_completed stored in the events stream. */
  const evalEvents = async (): Promise<EvalCompletedEvent[]> => {
    const s = runSubjects(RUN);
    const consumer = await bus.consumer({ stream: s.eventsStream, durable: `read-${Date.now()}`, filterSubject: s.event('eval_completed'), ackWaitMs: 30_000, maxDeliver: 1, maxAckPending: 100 });
    const out: EvalCompletedEvent[] = [];
    for (let m = await consumer.next({ expiresMs: 1000 }); m; m = await consumer.next({ expiresMs: 1000 })) {
      out.push(JSON.parse(new TextDecoder().decode(m.data)));
      m.ack();
    }
    await consumer.delete();
    return out;
  };
  const evalState = async (): Promise<EvalRunState | undefined> => {
    const e = await state.get(EVAL_STATE_KEY);
    return e ? JSON.parse(new TextDecoder().decode(e.value)) : undefined;
  };
  const conversationsOf = (label: string) => new Set(generations.filter((g) => g.conversation.includes(`/eval-${label}-`)).map((g) => g.conversation));

  it('publishes eval_completed for steps 2 and 4 once each across a restart, with the learner\'s version; the controller shows the pass rate', async () => {
    const tracker = new RunEventsTracker({ bus, logger, clock: realClock(), metrics: runMetrics(new Registry()) }, () => undefined);
    closers.push(() => tracker.stop());
    await tracker.follow('default', RUN, undefined);
    const key = `default/${RUN}`;

    let running: RunningCoordinator | undefined = await serveCoordinator(options(), logger);
    closers.push(() => running?.close());
    await loadVersion(1);
    await learnerAt(1);
    await new Promise((r) => setTimeout(r, 300));
    expect(generations).toEqual([]);
    // The learner is at step 2 before the policy serves version 2: the evaluation waits for it.
    await learnerAt(2);
    await until(async () => (await evalState())?.running?.step === 2, 'step 2 recorded as running');
    await new Promise((r) => setTimeout(r, 300));
    expect(generations).toEqual([]);
    await loadVersion(2);
    const first = await until(async () => (await evalEvents()).find((e) => e.step === 2), 'eval_completed for step 2');
    expect(first).toMatchObject({ run: RUN, step: 2, final: false, policyVersion: 2, tasks: EVAL_TASKS, episodes: EVAL_TASKS * K, split: 'test', domain: 'local' });
    // No episode was refused for an older version (it would end as TERMINATION_ERROR = 11).
    expect(first.terminations['11']).toBeUndefined();
    expect(Object.keys(first.passk)).toEqual(['1', '2']);
    const status = await until(() => (tracker.progress(key)?.metrics.passRate !== undefined ? tracker.progress(key) : undefined), 'the tracker to take the pass rate');
    expect(status.metrics.passRate).toBe(first.passRate);
    const step2Conversations = conversationsOf('step-2-2').size;
    expect(step2Conversations).toBe(EVAL_TASKS * K);

    await running.close();
    running = await serveCoordinator(options(), logger);
    await loadVersion(3);
    await learnerAt(3);
    await loadVersion(4);
    await learnerAt(4);
    await until(() => running?.done, 'the final evaluation', 90_000);
    await running.close();
    running = undefined;

    const events = await evalEvents();
    expect(events.map((e) => [e.step, e.policyVersion, e.final])).toEqual([[2, 2, false], [4, 4, true]]);
    expect(events[1]!.terminations['11']).toBeUndefined();
    expect(await evalState()).toMatchObject({ evaluated: 4 });
    expect((await evalState())?.running).toBeUndefined();
    // Step 2 was not evaluated again after the restart; every episode asked for its step's version.
    expect(conversationsOf('step-2-2').size).toBe(step2Conversations);
    expect(conversationsOf('final-4').size).toBe(EVAL_TASKS * K);
    expect(new Set(generations.filter((g) => g.conversation.includes('/eval-final-4-')).map((g) => g.minPolicyVersion))).toEqual(new Set([4]));
    expect(new Set(generations.filter((g) => g.conversation.includes('/eval-step-2-2-')).map((g) => g.minPolicyVersion))).toEqual(new Set([2]));

    const progress = await until(() => (tracker.progress(key)?.metrics.passRate === events[1]!.passRate ? tracker.progress(key) : undefined), 'the final pass rate');
    const computed = computeStatus(undefined, { generation: 1, now: new Date().toISOString(), spec: { ok: true }, suspend: false, steps: 4, groups: [], progress });
    expect(computed.metrics?.passRate).toBe(events[1]!.passRate);
  }, 180_000);
});
