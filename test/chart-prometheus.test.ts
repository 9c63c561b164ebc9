// A real Prometheus scrapes a running controller (reconciling a run on the Kubernetes API test double,
// fed NATS events) and an actor exporter holding the services' real metric objects; every dashboard
// query must return data. Skips without /usr/bin/prometheus, except under CI=true.

import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { coordinatorMetrics } from '../services/controller/coordinator/index.js';
import { createMemoryBus } from '../services/core/bus/index.js';
import { createLogger } from '../services/core/logger.js';
import { Counter, Gauge, Histogram, Registry, serveMetrics, type MetricsServer } from '../services/core/metrics.js';
import { runSubjects } from '../services/core/run-subjects.js';
import { learnerMetrics } from '../services/learner/index.js';
import { policyMetrics } from '../services/policy/index.js';
import { RolloutWorker } from '../services/rollout/worker.js';
import { resolveSandboxConfig, SandboxService } from '../services/sandbox/index.js';
import { userSimMetrics } from '../services/usersim/metrics.js';
import { createRun, eventually, exampleRun, REPO, startHarness, type Harness } from '../services/controller/testing/harness.js';
import { startKubeApiDouble, type KubeApiDouble } from './fixtures/kube-api-double.js';

const BIN = process.env.PROMETHEUS_BIN ?? '/usr/bin/prometheus';
function havePrometheus(): boolean {
  try {
    accessSync(BIN, constants.X_OK);
    return true;
  } catch {
    const msg = `prometheus not found at ${BIN} (apt-get install prometheus, or set PROMETHEUS_BIN)`;
    if (process.env.CI === 'true') throw new Error(msg);
    console.warn(`skipping: ${msg}`);
    return false;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Gives every series of every metric in `registry` a value (one label set per metric), as a busy actor would. */
function exercise(registry: Registry): void {
  for (const m of registry.getMetricsAsArray() as unknown as (Counter | Gauge | Histogram)[]) {
    const labels = Object.fromEntries(((m as unknown as { labelNames: string[] }).labelNames ?? []).map((l) => [l, 'demo']));
    if (m instanceof Counter) m.inc(labels, 1 + Math.random());
    else if (m instanceof Gauge) m.set(labels, Math.random());
    else if (m instanceof Histogram) m.observe(labels, Math.random());
  }
}

const enabled = havePrometheus();
const NS = 'ml';
const RUN = 'cpu-small';
let api: KubeApiDouble;
let h: Harness;
let actorRegistry: Registry;
let servers: MetricsServer[] = [];
let prom: ChildProcess | undefined;
let promUrl = '';
let dir = '';
let ticker: NodeJS.Timeout | undefined;

beforeAll(async () => {
  if (!enabled) return;
  api = await startKubeApiDouble();
  h = await startHarness(api.kubeConfig());
  await createRun(h, NS, exampleRun(RUN));
  await eventually(async () => (await h.k8s.getRun(NS, RUN))?.status?.phase === 'Provisioning', 10_000, 'reconciled');
  api.runWorkloads();
  await eventually(async () => (await h.k8s.getRun(NS, RUN))?.status?.phase === 'Running', 10_000, 'Running');
  const s = runSubjects(RUN);
  const send = (name: string, body: object, id: string) => h.bus.publish(s.event(name), new TextEncoder().encode(JSON.stringify(body)), { msgId: id });
  await send('weights_published', { run: RUN, version: 1 }, 'w1');
  await send('weights_loaded', { run: RUN, version: 1, actor: 'policy-0' }, 'l1');
  await send('step_completed', { run: RUN, step: 1, policyVersion: 1, trajectories: 16, rewardMean: 0.4, seconds: 2, metrics: { tokens: 1000, pass_rate: 0.3, staleness_mean: 0.5 } }, 's1');
  await eventually(async () => (await h.k8s.getRun(NS, RUN))?.status?.step === 1, 10_000, 'step 1');

  // One "actor pod": the services' own metric objects in one registry.
  actorRegistry = new Registry();
  learnerMetrics(actorRegistry);
  policyMetrics(actorRegistry);
  userSimMetrics(actorRegistry);
  coordinatorMetrics(actorRegistry);
  new RolloutWorker({ run: RUN, name: 'w', concurrency: 1, ackWaitMs: 1000, maxDeliver: 1, drainTimeoutMs: 0, episode: {} as never }, { bus: createMemoryBus(), ports: {} as never, logger: createLogger('test', 'silent'), registry: actorRegistry });
  new SandboxService(resolveSandboxConfig({}, {}), new Map(), actorRegistry);
  exercise(actorRegistry);
  ticker = setInterval(() => exercise(actorRegistry), 300);

  servers = [await serveMetrics(h.registry, 0, '127.0.0.1'), await serveMetrics(actorRegistry, 0, '127.0.0.1')];
  dir = mkdtempSync(join(tmpdir(), 'parley-prom-'));
  const [controller, actor] = servers.map((x) => `127.0.0.1:${x.port}`);
  writeFileSync(
    join(dir, 'prometheus.yml'),
    [
      'global: { scrape_interval: 1s, evaluation_interval: 1s }',
      'scrape_configs:',
      `  - job_name: controller`,
      `    static_configs: [{ targets: ["${controller}"], labels: { pod: parley-controller-0 } }]`,
      // What the chart's PodMonitor adds: namespace, pod and the run's labels.
      `  - job_name: actors`,
      `    static_configs: [{ targets: ["${actor}"], labels: { namespace: ${NS}, pod: ${RUN}-learner-0, parley_dev_run: ${RUN}, parley_dev_group: learner } }]`,
    ].join('\n'),
  );
  const port = await freePort();
  promUrl = `http://127.0.0.1:${port}`;
  prom = spawn(BIN, [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: 'ignore' });
  await eventually(async () => (await fetch(`${promUrl}/-/ready`)).ok, 30_000, 'Prometheus ready');
  // Four scrapes of each target, so rate() over the window has samples to work with.
  await eventually(async () => {
    const r = await query('count_over_time(up[1m])');
    return r.length === 2 && r.every((x: { value: [number, string] }) => Number(x.value[1]) >= 4);
  }, 30_000, 'four scrapes of both targets');
}, 90_000);

afterAll(async () => {
  if (ticker) clearInterval(ticker);
  if (prom?.pid && prom.exitCode === null) {
    const exited = new Promise((r) => prom!.once('exit', r));
    process.kill(prom.pid, 'SIGTERM');
    await exited;
  }
  for (const s of servers) await s.close();
  await h?.close();
  await api?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function query(expr: string): Promise<any[]> {
  const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
  const body = (await res.json()) as { status: string; error?: string; data?: { result: any[] } };
  if (body.status !== 'success') throw new Error(`${expr}: ${body.error}`);
  return body.data!.result;
}

it.skipIf(!enabled)('every dashboard query returns data', async () => {
  const dashboards = readdirSync(join(REPO, 'charts/parley/dashboards')).filter((f) => f.endsWith('.json'));
  const empty: string[] = [];
  let checked = 0;
  for (const file of dashboards) {
    const json = JSON.parse(readFileSync(join(REPO, 'charts/parley/dashboards', file), 'utf8'));
    for (const panel of json.panels) {
      for (const t of panel.targets) {
        // Grafana's variables as "All" selects them, and its rate interval.
        const expr = t.expr.replaceAll('$namespace', '.*').replaceAll('$run', '.*').replaceAll('$__rate_interval', '30s');
        const result = await query(expr);
        checked++;
        if (result.length === 0) empty.push(`${file} / ${panel.title}: ${t.expr}`);
      }
    }
  }
  expect(checked).toBeGreaterThan(30);
  expect(empty).toEqual([]);
}, 60_000);
