// The rollout worker on the in-process bus: episodes end in scored trajectories; malformed tasks are
// terminated; transient backend failures are retried then handed back; permanent ones become error
// trajectories; slow episodes are kept alive by heartbeats (no duplicate work).

import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { afterEach, beforeAll, expect, it } from 'vitest';
import { createMemoryBus, type Bus } from '../services/core/bus/index.js';
import { ParleyError } from '../services/core/errors.js';
import { createLocalClient } from '../services/core/local-client.js';
import { createLogger } from '../services/core/logger.js';
import { Registry } from '../services/core/metrics.js';
import { runSubjects } from '../services/core/run-subjects.js';
import { RolloutTaskSchema, TrajectorySchema, type Trajectory } from '../services/core/gen/parley/v1/rollout_pb.js';
import { Sandbox, Termination } from '../services/core/gen/parley/v1/sandbox_pb.js';
import { UserSimulator } from '../services/core/gen/parley/v1/usersim_pb.js';
import { Role } from '../services/core/gen/parley/v1/chat_pb.js';
import { DEFAULT_EPISODE_OPTIONS, runEpisode } from '../services/rollout/episode.js';
import type { EpisodePorts, PolicyPort } from '../services/rollout/ports.js';
import { ensureRunStreams, publishGroup } from '../services/rollout/publisher.js';
import { CapacityServer } from '../services/rollout/sim/capacity-server.js';
import { SimulatedPolicy } from '../services/rollout/sim/simulated-policy.js';
import { RolloutWorker } from '../services/rollout/worker.js';
import { loadDomains, resolveSandboxConfig, SandboxService, type LoadedDomain } from '../services/sandbox/index.js';
import { UserSimulatorService, parseUserSimConfig } from '../services/usersim/index.js';
import { describeTau2, tau2DataDir } from './fixtures/tau2-data.js';

const logger = createLogger('test', 'silent');

describeTau2('retail', 'rollout worker (in-process bus)', () => {
  let ports: Omit<EpisodePorts, 'policy'>;
  let retail: LoadedDomain;
  let bus: Bus;
  let worker: RolloutWorker | undefined;
  const registry = new Registry();

  beforeAll(() => {
    const cfg = resolveSandboxConfig({ dataDir: tau2DataDir(), domains: ['retail'], metricsPort: -1 });
    const domains = loadDomains(cfg);
    retail = domains.get('retail')!;
    const sandbox = new SandboxService(cfg, domains, registry);
    const users = new UserSimulatorService({ config: parseUserSimConfig({ mode: 'scripted' }), logger, registry });
    ports = { sandbox: createLocalClient(Sandbox, sandbox.impl), user: createLocalClient(UserSimulator, users as never) };
  });
  afterEach(async () => {
    await worker?.stop();
    await bus?.close();
  });

  const simulated = () =>
    new SimulatedPolicy({ server: new CapacityServer({ capacityTokensPerS: 1e6, maxSequenceTokensPerS: 1e6 }), tasks: retail.tasks, medianCompletionTokens: 20, sigma: 0.5, extraTurnProbability: 0, seed: 1 });

  async function setup(policy: PolicyPort, ackWaitMs = 2000) {
    bus = createMemoryBus();
    await ensureRunStreams(bus, 'wtest');
    worker = new RolloutWorker(
      { run: 'wtest', name: 'w', concurrency: 4, ackWaitMs, maxDeliver: 3, drainTimeoutMs: 5000, episode: { ...DEFAULT_EPISODE_OPTIONS, retry: { attempts: 2, baseDelayMs: 5, maxDelayMs: 10 } } },
      { bus, ports: { ...ports, policy }, logger, registry },
    );
    await worker.start();
    const got: Trajectory[] = [];
    const consumer = await bus.consumer({ stream: runSubjects('wtest').trajectoriesStream, durable: 'c', ackWaitMs: 5000, maxDeliver: 5, maxAckPending: 100 });
    const stream = consumer.consume({ expiresMs: 1000 });
    void (async () => {
      for await (const m of stream) {
        got.push(fromBinary(TrajectorySchema, m.data));
        m.ack();
      }
    })();
    return got;
  }

  async function waitFor(pred: () => boolean, ms = 20_000) {
    const until = Date.now() + ms;
    while (!pred() && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    expect(pred()).toBe(true);
  }

  it('runs episodes to scored trajectories with exact token accounting', async () => {
    const got = await setup(simulated());
    await publishGroup(bus, { run: 'wtest', domain: 'retail', taskId: '0', groupId: 'g0', groupSize: 3, horizon: 30, minPolicyVersion: 0n, mode: 'mua', seed: 1n });
    await waitFor(() => got.length === 3);
    for (const t of got) {
      expect(t.tokenIds.length).toBe(t.lossMask.length);
      expect(t.logprobs.length).toBe(t.tokenIds.length);
      expect(t.turns).toBeGreaterThan(1);
      expect(t.spans.some((s) => s.role === 'assistant')).toBe(true);
      expect(t.spans.some((s) => s.role === 'tool')).toBe(true);
      expect([Termination.AGENT_STOP, Termination.USER_STOP]).toContain(t.termination);
      expect(t.components.map((c) => c.name)).toContain('DB');
      expect(t.terminationDetail).not.toContain('prefix_violations');
    }
    // The simulated agent performs the gold actions, so the DB matches the gold replay.
    expect(got.every((t) => t.components.find((c) => c.name === 'DB')?.value === 1)).toBe(true);
  });

  it("sends a domain's tools and policy once per sandbox client, and only assistant and user messages to Evaluate", async () => {
    const opens: { req: { knownSchemaDigest?: string }; res: { tools: unknown[]; policy: string; schemaDigest: string } }[] = [];
    const evaluated: { role: Role }[][] = [];
    const sandbox = {
      ...ports.sandbox,
      openSession: async (req: Parameters<EpisodePorts['sandbox']['openSession']>[0]) => {
        const res = await ports.sandbox.openSession(req);
        opens.push({ req: { ...req }, res });
        return res;
      },
      evaluate: async (req: Parameters<EpisodePorts['sandbox']['evaluate']>[0]) => {
        evaluated.push((req.messages ?? []).map((m) => ({ role: m.role! })));
        return ports.sandbox.evaluate(req);
      },
    } as EpisodePorts['sandbox'];
    const policy = simulated();
    const prompts: { tools: number; system: string }[] = [];
    const recording: PolicyPort = {
      generate: (req) => {
        prompts.push({ tools: req.tools?.length ?? 0, system: req.messages?.[0]?.content ?? '' });
        return policy.generate(req);
      },
    };
    const rollout = (taskId: string, groupId: string) =>
      runEpisode({ sandbox, user: ports.user, policy: recording }, create(RolloutTaskSchema, { run: 'schemas', domain: 'retail', taskId, groupId, sampleIndex: 0, horizon: 30, mode: 'mua', seed: 1n }), {
        scenario: '',
        taskJson: JSON.stringify(retail.tasks.get(taskId)),
      });
    const first = await rollout('0', 'a');
    const second = await rollout('1', 'b');

    expect(opens.map((o) => o.req.knownSchemaDigest)).toEqual(['', opens[0]!.res.schemaDigest]);
    expect(opens[0]!.res.schemaDigest).toMatch(/^[0-9a-f]{32}$/);
    expect([opens[0]!.res.tools.length > 0, opens[0]!.res.policy.length > 0]).toEqual([true, true]);
    expect([opens[1]!.res.tools.length, opens[1]!.res.policy, opens[1]!.res.schemaDigest]).toEqual([0, '', opens[0]!.res.schemaDigest]);
    // The second episode prompts the policy with the same tools and system prompt as the first.
    expect(new Set(prompts.map((p) => p.tools))).toEqual(new Set([retail.domain.tools.length]));
    expect(new Set(prompts.map((p) => p.system)).size).toBe(1);
    expect(prompts[0]!.system).toContain(retail.domain.policy.slice(0, 200));

    expect(evaluated).toHaveLength(2);
    for (const roles of evaluated) expect(new Set(roles.map((m) => m.role))).toEqual(new Set([Role.ASSISTANT, Role.USER]));
    // The simulated agent performs the gold actions: both episodes score as solved.
    for (const t of [first, second]) expect([t.reward, t.components?.find((c) => c.name === 'ACTION')?.value]).toEqual([1, 1]);
  });

  it('stops pulling, without an unhandled rejection, when its task stream is deleted', async () => {
    await setup(simulated());
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      await bus.deleteStream(runSubjects('wtest').tasksStream);
      const failure = await worker!.ended();
      expect(failure?.message).toMatch(/deleted/);
      expect(worker!.currentState).toBe('stopped');
      await new Promise((r) => setTimeout(r, 50));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('terminates malformed and invalid task messages', async () => {
    const got = await setup(simulated());
    const s = runSubjects('wtest');
    await bus.publish(s.tasks, new Uint8Array([0xff, 0xff, 0xff]), { msgId: 'garbage' });
    await bus.publish(s.tasks, toBinary(RolloutTaskSchema, create(RolloutTaskSchema, { run: 'wtest', taskId: '0', groupId: 'g' })), { msgId: 'no-domain' });
    const until = Date.now() + 5000;
    while ((await bus.streamInfo(s.tasksStream)).messages > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    expect((await bus.streamInfo(s.tasksStream)).messages).toBe(0);
    expect(got).toHaveLength(0);
    const metrics = await registry.getSingleMetricAsString('parley_rollout_tasks_total');
    expect(metrics).toMatch(/outcome="term_malformed"} [2-9]/);
  });

  it('hands transient failures back and turns permanent ones into error trajectories', async () => {
    let calls = 0;
    const flaky: PolicyPort = {
      generate: async () => {
        calls++;
        throw new ParleyError('unavailable', 'backend down');
      },
    };
    const got = await setup(flaky);
    await publishGroup(bus, { run: 'wtest', domain: 'retail', taskId: '0', groupId: 'g1', groupSize: 1, horizon: 30, minPolicyVersion: 0n, mode: 'mua', seed: 1n });
    await waitFor(() => calls >= 2);
    await new Promise((r) => setTimeout(r, 300));
    expect(got).toHaveLength(0); // handed back (nak), never published as a result
    await worker!.stop();
    await bus.close();

    const broken: PolicyPort = { generate: async () => { throw new ParleyError('invalid_argument', 'messages[2].role: bad'); } };
    const got2 = await setup(broken);
    await publishGroup(bus, { run: 'wtest', domain: 'retail', taskId: '0', groupId: 'g2', groupSize: 1, horizon: 30, minPolicyVersion: 0n, mode: 'mua', seed: 1n });
    await waitFor(() => got2.length === 1);
    expect(got2[0]!.termination).toBe(Termination.ERROR);
    expect(got2[0]!.terminationDetail).toContain('error:policy:invalid_argument');
    expect(got2[0]!.reward).toBe(0);
  });

  it('outlasts an actor that is not there yet without spending the task’s deliveries (maxDeliver 3, 4 failed attempts)', async () => {
    // A policy whose inference server is still loading: 8 unavailable answers (4 episode attempts of 2
    // tries each), then it serves. Handing the task back each time would exhaust maxDeliver (3) and lose it.
    const inner = simulated();
    let calls = 0;
    const starting: PolicyPort = {
      generate: async (req) => {
        if (++calls <= 8) throw new ParleyError('unavailable', 'no responders');
        return inner.generate(req);
      },
    };
    // The file's tests share one registry (an earlier worker's drain may still count): compare differences.
    const outcome = async (o: string) => (await registry.getSingleMetric('parley_rollout_tasks_total')!.get()).values.find((v) => v.labels.outcome === o)?.value ?? 0;
    const before = { retried: await outcome('retry_transient'), naked: await outcome('nak_transient') };
    const got = await setup(starting);
    await publishGroup(bus, { run: 'wtest', domain: 'retail', taskId: '0', groupId: 'g-late', groupSize: 1, horizon: 30, minPolicyVersion: 0n, mode: 'mua', seed: 1n });
    await waitFor(() => got.length === 1, 30_000);
    expect(got[0]!.termination).not.toBe(Termination.ERROR);
    expect((await outcome('retry_transient')) - before.retried).toBeGreaterThanOrEqual(4);
    expect((await outcome('nak_transient')) - before.naked).toBe(0);
  }, 40_000);

  it("ends an episode whose agent says nothing as the agent's error, without asking the user", async () => {
    const inner = simulated();
    const silent: PolicyPort = {
      generate: async (req) => {
        const r = await inner.generate(req);
        return { ...r, message: r.message && { ...r.message, content: '  ', toolCalls: [] } };
      },
    };
    const got = await setup(silent);
    await publishGroup(bus, { run: 'wtest', domain: 'retail', taskId: '0', groupId: 'g-silent', groupSize: 1, horizon: 30, minPolicyVersion: 0n, mode: 'mua', seed: 1n });
    await waitFor(() => got.length === 1);
    expect(got[0]!.termination).toBe(Termination.AGENT_ERROR);
    expect(got[0]!.terminationDetail).toContain('neither text nor a tool call');
    expect(got[0]!.reward).toBe(0);
    expect(got[0]!.turns).toBe(1);
  });

  it('keeps slow episodes alive with heartbeats (no redelivery, no duplicate)', async () => {
    const inner = simulated();
    const slow: PolicyPort = { generate: async (req) => { await new Promise((r) => setTimeout(r, 150)); return inner.generate(req); } };
    const got = await setup(slow, 300);
    await publishGroup(bus, { run: 'wtest', domain: 'retail', taskId: '0', groupId: 'g3', groupSize: 2, horizon: 30, minPolicyVersion: 0n, mode: 'mua', seed: 1n });
    await waitFor(() => got.length >= 2, 30_000);
    await new Promise((r) => setTimeout(r, 500));
    expect(got).toHaveLength(2);
    expect(got.every((t) => t.timings!.totalMs > 300)).toBe(true);
  });
});
