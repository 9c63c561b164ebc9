// Controller benchmark: N TrainingRuns created at once against the Kubernetes API test double, timed
// until every run is Running (actors created, pods ready, status written) and until all are deleted.
// `npx tsx bench/controller/bench.ts [--runs 10,50,200] [--workers 2] [--record]` (--record writes bench/RESULTS.md).

import { parseArgs } from 'node:util';
import type { Histogram } from 'prom-client';
import { writeResultsSection } from '../results.js';
import { createRun, deleteRun, exampleRun, startHarness } from '../../services/controller/testing/harness.js';
import { startKubeApiDouble } from '../../test/fixtures/kube-api-double.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '10,50,200' }, workers: { type: 'string', default: '2' }, record: { type: 'boolean', default: false } } });
const sizes = values.runs.split(',').map(Number);
const workers = Number(values.workers);

async function histogramMean(h: Histogram): Promise<{ mean: number; count: number }> {
  const { values: v } = await h.get();
  const sum = v.find((x) => x.metricName?.endsWith('_sum'))?.value ?? 0;
  const count = v.find((x) => x.metricName?.endsWith('_count'))?.value ?? 0;
  return { mean: count ? sum / count : 0, count };
}

async function until(check: () => Promise<boolean> | boolean, tick: () => void, timeoutMs: number): Promise<number> {
  const start = performance.now();
  while (!(await check())) {
    if (performance.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms`);
    tick();
    await new Promise((r) => setTimeout(r, 200));
  }
  return performance.now() - start;
}

const rows: string[] = [];
for (const n of sizes) {
  const api = await startKubeApiDouble();
  const h = await startHarness(api.kubeConfig(), { workers, resyncMs: 600_000 });
  const ns = `bench-${n}`;
  const requestsBefore = api.requests.length;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await createRun(h, ns, exampleRun('cpu-small', (r) => (r.metadata.name = `run-${i}`)));
  const createMs = performance.now() - t0;
  const running = async () => api.list('parley.dev/trainingruns', ns).filter((r) => (r.status as { phase?: string } | undefined)?.phase === 'Running').length === n;
  const upMs = await until(running, () => api.runWorkloads(), 120_000);
  const requests = api.requests.length - requestsBefore;
  const reconcile = await histogramMean(h.registry.getSingleMetric('parley_controller_reconcile_duration_seconds') as Histogram);
  for (let i = 0; i < n; i++) await deleteRun(h, ns, `run-${i}`);
  const downMs = await until(() => api.list('parley.dev/trainingruns', ns).length === 0, () => {}, 120_000);
  await h.close();
  await api.stop();
  rows.push(`| ${n} | ${workers} | ${createMs.toFixed(0)} | ${(createMs + upMs).toFixed(0)} | ${downMs.toFixed(0)} | ${reconcile.count} | ${(reconcile.mean * 1000).toFixed(1)} | ${(requests / n).toFixed(0)} |`);
  process.stderr.write(`${rows.at(-1)}\n`);
}

const body = [
  'N runs (`k8s/examples/cpu-small.yaml`) created one after another against the Kubernetes API test double (in-process HTTP,',
  'client-node), with an in-process bus. "to Running" counts from the first create until every run reports Running (its',
  'ConfigMap, 4 Deployments, a StatefulSet, 4 headless Services created, pods made ready by the double, status written);',
  '"deleted" from the first delete until every run is gone (finalizer: streams deleted first). Requests are the API calls',
  'of the controller and the test client together, per run.',
  '',
  '| runs | workers | create ms | to Running ms | deleted ms | reconciles | mean reconcile ms | API requests / run |',
  '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ...rows,
].join('\n');
process.stdout.write(body + '\n');
if (values.record) writeResultsSection('Controller reconcile throughput', `npx tsx bench/controller/bench.ts --runs ${values.runs} --workers ${workers}`, body);
