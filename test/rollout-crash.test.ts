// Crash safety of the rollout data plane with a real nats-server: a worker process killed with SIGKILL
// mid-episode, and a nats-server restart, lose no (task, sample); duplicates are removed by trajectory id.

import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fromBinary } from '@bufbuild/protobuf';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { connectBus, type Bus } from '../services/core/bus/index.js';
import { serveOverBus } from '../services/core/bus-rpc.js';
import { createLogger } from '../services/core/logger.js';
import { Registry } from '../services/core/metrics.js';
import { runSubjects } from '../services/core/run-subjects.js';
import { TrajectorySchema } from '../services/core/gen/parley/v1/rollout_pb.js';
import { Sandbox } from '../services/core/gen/parley/v1/sandbox_pb.js';
import { UserSimulator } from '../services/core/gen/parley/v1/usersim_pb.js';
import { ensureRunStreams, publishGroup } from '../services/rollout/publisher.js';
import { loadDomains, resolveSandboxConfig, SandboxService } from '../services/sandbox/index.js';
import { UserSimulatorService, parseUserSimConfig } from '../services/usersim/index.js';
import { haveNatsServer, startNatsServer, type NatsServer } from './fixtures/nats-server.js';
import { describeTau2, tau2DataDir } from './fixtures/tau2-data.js';

const repo = join(import.meta.dirname, '..');

function spawnWorker(natsUrl: string, run: string, name: string): ChildProcess {
  const child = spawn(
    process.execPath,
    [join(repo, 'bin', 'parley.js'), 'serve', 'rollout', '--run', run, '--nats', natsUrl, '--name', name, '--policy', 'simulated',
      '--simulated-tasks', join(tau2DataDir(), 'retail', 'tasks.json'), '--concurrency', '4', '--ack-wait-ms', '1500'],
    { cwd: repo, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, PARLEY_LOG_LEVEL: 'warn' } },
  );
  child.stderr?.on('data', (d: Buffer) => {
    if (process.env.PARLEY_TEST_VERBOSE) process.stderr.write(`[${name}] ${d}`);
  });
  return child;
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', () => r()));
}

async function waitUntil(pred: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describeTau2('retail', 'rollout crash safety (real nats-server)', () => {
  if (!haveNatsServer()) return;
  let nats: NatsServer;
  let bus: Bus;
  const closers: (() => Promise<void> | void)[] = [];
  const children: ChildProcess[] = [];
  const registry = new Registry();

  beforeAll(async () => {
    nats = await startNatsServer();
    bus = await connectBus(nats.url);
    const cfg = resolveSandboxConfig({ dataDir: tau2DataDir(), domains: ['retail'], metricsPort: -1 });
    const sandbox = new SandboxService(cfg, loadDomains(cfg), registry);
    const users = new UserSimulatorService({ config: parseUserSimConfig({ mode: 'scripted' }), logger: createLogger('test', 'silent'), registry });
    closers.push(() => sandbox.stop(), () => users.close());
    for (const run of ['crash-kill', 'crash-restart']) {
      await ensureRunStreams(bus, run);
      const a = await serveOverBus(bus, Sandbox, sandbox.impl, { run });
      const b = await serveOverBus(bus, UserSimulator, users as never, { run });
      closers.push(() => a.close(), () => b.close());
    }
  });
  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await Promise.all(children.map(exited));
    for (const c of closers.reverse()) await c();
    await bus?.close();
    await nats?.cleanup();
  });

  async function collect(run: string) {
    const s = runSubjects(run);
    const ids = new Set<string>();
    let duplicates = 0;
    const consumer = await bus.consumer({ stream: s.trajectoriesStream, durable: 'learner', ackWaitMs: 10_000, maxDeliver: 20, maxAckPending: 1000 });
    const stream = consumer.consume({ expiresMs: 1000 });
    const loop = (async () => {
      for await (const m of stream) {
        const t = fromBinary(TrajectorySchema, m.data);
        if (ids.has(t.id)) duplicates++;
        ids.add(t.id);
        m.ack();
      }
    })();
    return { ids, dups: () => duplicates, stop: async () => { stream.stop(); await loop.catch(() => undefined); } };
  }

  async function publishAll(run: string, groups: number, size: number): Promise<string[]> {
    const expected: string[] = [];
    for (let g = 0; g < groups; g++) {
      const taskId = String(g + 1);
      await publishGroup(bus, { run, domain: 'retail', taskId, groupId: `g${g}`, groupSize: size, horizon: 30, minPolicyVersion: 0n, mode: 'mua', seed: 7n });
      for (let k = 0; k < size; k++) expected.push(`${run}/${taskId}/g${g}/${k}`);
    }
    return expected;
  }

  it('kill -9 of a worker mid-episode: every (task, sample) arrives, once after dedup', async () => {
    const run = 'crash-kill';
    const got = await collect(run);
    const expected = await publishAll(run, 5, 4);
    const first = spawnWorker(nats.url, run, 'w1');
    children.push(first);
    await waitUntil(() => got.ids.size >= 3, 60_000, 'the first trajectories');
    first.kill('SIGKILL');
    await exited(first);
    const second = spawnWorker(nats.url, run, 'w2');
    children.push(second);
    await waitUntil(() => expected.every((id) => got.ids.has(id)), 120_000, 'all trajectories after the crash');
    second.kill('SIGTERM');
    await exited(second);
    await got.stop();
    expect([...got.ids].sort()).toEqual([...expected].sort());
  }, 240_000);

  it('a nats-server restart mid-run loses nothing', async () => {
    const run = 'crash-restart';
    const got = await collect(run);
    const expected = await publishAll(run, 4, 3);
    const w = spawnWorker(nats.url, run, 'w3');
    children.push(w);
    await waitUntil(() => got.ids.size >= 2, 60_000, 'the first trajectories');
    await nats.restart();
    await waitUntil(() => expected.every((id) => got.ids.has(id)), 120_000, 'all trajectories after the restart');
    w.kill('SIGTERM');
    await exited(w);
    await got.stop();
    expect([...got.ids].sort()).toEqual([...expected].sort());
  }, 240_000);
});
