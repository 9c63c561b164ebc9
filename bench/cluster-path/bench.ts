// The two ways `parley run` runs a TrainingRun on one machine, both the controller's pods as local
// processes over a nats-server: `--pods` exactly as a cluster without a shared volume runs it (weights
// through the NATS object store) and plain `parley run` (a shared volume folder, weights named by
// directory, plus the baseline evaluation of the untrained model when the spec has a cold start), one
// after the other in this run. Records wall time, the per-step time and the weight-sync latency
// (weights_published → every policy replica's weights_loaded, per version) in bench/RESULTS.md.
//
//   npx tsx bench/cluster-path/bench.ts [--steps 3] [--spec k8s/examples/cpu-small.yaml]

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { percentile, writeResultsSection } from '../results.js';

const { values } = parseArgs({ options: { steps: { type: 'string', default: '3' }, spec: { type: 'string', default: 'k8s/examples/cpu-small.yaml' }, 'no-record': { type: 'boolean', default: false } } });
const REPO = resolve(import.meta.dirname, '../..');
const spec = resolve(REPO, values.spec!);
const work = mkdtempSync(join(tmpdir(), 'parley-bench-cluster-'));

function run(label: string, args: string[]): { seconds: number; report: Record<string, unknown> } {
  const out = join(work, label);
  process.stderr.write(`${label}: parley run ${args.join(' ')}\n`);
  const t0 = Date.now();
  execFileSync(process.execPath, [join(REPO, 'bin/parley.js'), 'run', spec, '--steps', values.steps!, '--out', out, ...args], { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, PARLEY_LOG_LEVEL: 'warn' } });
  return { seconds: (Date.now() - t0) / 1000, report: JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as Record<string, unknown> };
}

try {
  const pods = run('pods', ['--pods', '--timeout', '900']);
  const local = run('local', []);
  const stepSeconds = (r: Record<string, unknown>) => (r.iterations as { seconds: number }[]).map((i) => i.seconds);
  const syncOf = (r: Record<string, unknown>) => Object.entries(r.weight_sync_seconds as Record<string, number>).map(([v, s]) => ({ v: Number(v), s }));
  const sync = syncOf(pods.report);
  const localSync = new Map(syncOf(local.report).map(({ v, s }) => [v, s]));
  const loaded = pods.report.weights_loaded as Record<string, number[]>;
  const med = (xs: number[]) => percentile(xs, 50);
  const rows = [
    `| path | wall (s) | median step (s) | steps |`,
    `| --- | --- | --- | --- |`,
    `| \`--pods\` (${Object.keys(pods.report.pods as object).length} pods, a process per container, nats-server) | ${pods.seconds.toFixed(0)} | ${med(stepSeconds(pods.report)).toFixed(1)} | ${stepSeconds(pods.report).length} |`,
    `| \`parley run\` (the same pods, a shared volume: weights by directory) | ${local.seconds.toFixed(0)} | ${med(stepSeconds(local.report)).toFixed(1)} | ${stepSeconds(local.report).length} |`,
  ];
  const body = [
    `The same TrainingRun (\`${values.spec}\`, \`--steps ${values.steps}\`) both ways, one after the other. Wall time includes start-up`,
    "(init containers generating the builtin model, engines starting) and the coordinator's evaluations (before training,",
    'every evaluation.everySteps and after the last step).',
    '',
    ...rows,
    `| ratio --pods / parley run | ${(pods.seconds / local.seconds).toFixed(2)} | | |`,
    '',
    `Weight sync (weights_published → the last of ${Object.keys(loaded).length} policy replicas' weights_loaded; under \`--pods\` the learner uploads to the`,
    'NATS object store and each replica downloads; with the shared volume each replica reads the folder; both load into their own engine):',
    '',
    '| version | object store (s) | shared volume (s) |',
    '| --- | --- | --- |',
    ...sync.map(({ v, s }) => `| ${v} | ${s.toFixed(2)} | ${localSync.get(v)?.toFixed(2) ?? '-'} |`),
    '',
    `Versions loaded per replica: ${Object.entries(loaded).map(([p, v]) => `${p.replace(/^.*-policy-/, 'policy-')} [${v.join(', ')}]`).join(', ')}.`,
  ].join('\n');
  process.stdout.write(`${body}\n`);
  if (!values['no-record']) writeResultsSection('Cluster path: --pods (object store) next to parley run (shared volume)', `npx tsx bench/cluster-path/bench.ts --steps ${values.steps}`, body);
} finally {
  rmSync(work, { recursive: true, force: true });
}
