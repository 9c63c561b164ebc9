// The servers' NATS side against a real nats-server: serveSandbox, serveUserSimulator and servePolicy
// given a NATS URL and a run also serve their one implementation object over request-reply (gRPC
// stays); a URL without a run fails at start naming --run; `parley serve sandbox --nats --run` works.

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectBus, type Bus } from '../services/core/bus/index.js';
import { createBusClient } from '../services/core/bus-rpc.js';
import { ParleyError } from '../services/core/errors.js';
import { Role } from '../services/core/gen/parley/v1/chat_pb.js';
import { Policy } from '../services/core/gen/parley/v1/policy_pb.js';
import { Sandbox } from '../services/core/gen/parley/v1/sandbox_pb.js';
import { UserSimulator } from '../services/core/gen/parley/v1/usersim_pb.js';
import { createGrpcClient } from '../services/core/grpc.js';
import { createLogger } from '../services/core/logger.js';
import { Registry } from '../services/core/metrics.js';
import { servePolicy } from '../services/policy/index.js';
import { serveSandbox } from '../services/sandbox/index.js';
import { serveUserSimulator } from '../services/usersim/index.js';
import { haveNatsServer, startNatsServer, type NatsServer } from './fixtures/nats-server.js';
import { describeTau2, tau2DataDir, tau2DomainDir } from './fixtures/tau2-data.js';
import { QWEN3_MODEL_DIR, makeAdapterDir, startVllmDouble, type VllmDouble } from './fixtures/vllm-double.js';

const RUN = 'serve-test';
const logger = createLogger('serve-over-nats-test', 'silent');
const repo = join(import.meta.dirname, '..');

async function failure(p: Promise<unknown>): Promise<ParleyError> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(e, 'expected a rejection').toBeInstanceOf(ParleyError);
  return e as ParleyError;
}

/** A start-up without a run name: invalid_argument naming `run` and the flag. */
async function expectRunRequired(p: Promise<unknown>): Promise<void> {
  const e = await failure(p);
  expect(e).toMatchObject({ code: 'invalid_argument', field: 'run' });
  expect(e.message).toContain('--run');
}

(haveNatsServer() ? describe : describe.skip)('servers over a real nats-server', () => {
  let nats: NatsServer;
  let bus: Bus;
  beforeAll(async () => {
    nats = await startNatsServer();
    bus = await connectBus(nats.url);
  });
  afterAll(async () => {
    await bus?.close();
    await nats?.cleanup();
  });

  describeTau2('mock', 'Sandbox', () => {
    const options = { port: 0, host: '127.0.0.1', metricsPort: -1, dataDir: tau2DataDir(), domains: ['mock'] };

    it('serves one object over NATS and gRPC, and stops answering on NATS once closed', async () => {
      const sb = await serveSandbox({ ...options, busUrl: nats.url, run: RUN }, logger);
      const overBus = createBusClient(bus, Sandbox, { run: RUN, defaultTimeoutMs: 5000 });
      const overGrpc = createGrpcClient(Sandbox, `127.0.0.1:${sb.grpc.port}`);
      try {
        expect(sb.bus?.run).toBe(RUN);
        const { sessionId } = await overBus.openSession({ domain: 'mock', taskId: 'update_task_1' });
        await overBus.call({ sessionId, toolName: 'update_task_status', argumentsJson: '{"task_id":"task_1","status":"completed"}' });
        // The session opened over NATS lives in the object gRPC serves.
        expect((await overGrpc.closeSession({ sessionId })).callsMade).toBe(1);
      } finally {
        overGrpc.close();
        await sb.close();
      }
      expect((await failure(overBus.listDomains({}))).code).toBe('unavailable');
    });

    it('refuses a NATS URL without a run, naming --run', async () => {
      await expectRunRequired(serveSandbox({ ...options, busUrl: nats.url }, logger));
    });

    it('refuses a bus URL that is not a NATS server, naming --nats and not echoing the URL', async () => {
      const e = await failure(serveSandbox({ ...options, busUrl: 'memory://secret@x', run: 'r' }, logger));
      expect([e.code, e.field]).toEqual(['invalid_argument', 'nats']);
      expect(e.message).toContain('a memory: URL');
      expect(e.message).not.toContain('secret');
    });

    it('parley serve sandbox --nats <url> --run <name> serves over NATS and says so', async () => {
      const env: NodeJS.ProcessEnv = { ...process.env, PARLEY_LOG_LEVEL: 'warn' };
      delete env.PARLEY_BUS_URL;
      delete env.PARLEY_RUN;
      const args = ['serve', 'sandbox', '--port', '0', '--host', '127.0.0.1', '--metrics-port', '-1', '--data-dir', tau2DataDir(), '--domains', 'mock'];
      const child = spawn(process.execPath, [join(repo, 'bin', 'parley.js'), ...args, '--nats', nats.url, '--run', 'cli-test'], { cwd: repo, env, stdio: ['ignore', 'ignore', 'pipe'] });
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      try {
        const until = Date.now() + 30_000;
        while (!stderr.includes('Ctrl-C') && child.exitCode === null && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
        expect(stderr).toContain("over NATS in run 'cli-test'");
        const domains = await createBusClient(bus, Sandbox, { run: 'cli-test', defaultTimeoutMs: 5000 }).listDomains({});
        expect(domains.domains.map((d) => d.name)).toEqual(['mock']);
      } finally {
        child.kill('SIGTERM');
        await exited;
      }

      const noRun = spawn(process.execPath, [join(repo, 'bin', 'parley.js'), ...args, '--nats', nats.url], { cwd: repo, env, stdio: ['ignore', 'ignore', 'pipe'] });
      let noRunErr = '';
      noRun.stderr!.on('data', (d: Buffer) => (noRunErr += d.toString()));
      expect(await new Promise<number | null>((r) => noRun.once('exit', (code) => r(code)))).toBe(2);
      expect(noRunErr).toContain('--run');
    }, 60_000);
  });

  describeTau2('retail', 'UserSimulator', () => {
    const config = { mode: 'scripted', host: '127.0.0.1', port: 0, metricsPort: -1 };
    const task = () => JSON.stringify((JSON.parse(readFileSync(resolve(tau2DomainDir('retail'), 'tasks.json'), 'utf8')) as { id: string }[]).find((t) => t.id === '0'));

    it('serves one object over NATS and gRPC', async () => {
      const us = await serveUserSimulator({ config: { ...config, busUrl: nats.url, run: RUN }, env: {}, logger, registry: new Registry() });
      const overGrpc = createGrpcClient(UserSimulator, `127.0.0.1:${us.port}`);
      try {
        const overBus = createBusClient(bus, UserSimulator, { run: RUN, defaultTimeoutMs: 5000 });
        const first = await overBus.start({ conversationId: 'c1', taskJson: task() });
        expect(first.message?.role).toBe(Role.USER);
        const reply = await overGrpc.reply({ conversationId: 'c1', agentMessage: { role: Role.ASSISTANT, content: 'Could you tell me your name and zip code?' } });
        expect(reply.message?.content).toBe('My name is Yusuf Rossi. My zip code is 19122.');
      } finally {
        overGrpc.close();
        await us.close();
      }
    });

    it('refuses a NATS URL without a run, naming --run', async () => {
      await expectRunRequired(serveUserSimulator({ config: { ...config, busUrl: nats.url }, env: {}, logger, registry: new Registry() }));
    });
  });

  describe('Policy', () => {
    let vllm: VllmDouble;
    beforeAll(async () => {
      vllm = await startVllmDouble({ complete: () => 'Hello.' });
    });
    afterAll(() => vllm?.close());
    const config = () => ({ modelDir: QWEN3_MODEL_DIR, backendUrl: vllm.url, modelName: vllm.modelName, host: '127.0.0.1', port: 0, metricsPort: 0 });

    it('serves one object over NATS and gRPC (busUrl and run from PARLEY_BUS_URL and PARLEY_RUN)', async () => {
      const policy = await servePolicy({ config: config(), env: { PARLEY_BUS_URL: nats.url, PARLEY_RUN: RUN }, logger, registry: new Registry() });
      const overGrpc = createGrpcClient(Policy, `127.0.0.1:${policy.port}`);
      try {
        const overBus = createBusClient(bus, Policy, { run: RUN, defaultTimeoutMs: 5000 });
        expect(await overBus.loadWeights({ version: 1n, uri: makeAdapterDir() })).toMatchObject({ version: 1n });
        expect((await overGrpc.info({})).policyVersion).toBe(1n);
      } finally {
        overGrpc.close();
        await policy.close();
      }
    });

    it('refuses a NATS URL without a run, naming --run', async () => {
      await expectRunRequired(servePolicy({ config: config(), env: { PARLEY_BUS_URL: nats.url }, logger, registry: new Registry() }));
    });
  });
});
