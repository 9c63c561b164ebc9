// Records a local demo run in bench/RESULTS.md ("Local demo run"): held-out pass^1 before training, after
// SFT and at the end with their intervals, wall time, and the per-step table, read from the run's report.
// `npx tsx bench/local-run/record.ts out/demo` after `npx parley run examples/local/demo.yaml --out out/demo`.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EvalSummary, RunReport } from '../../services/eval/run-report.js';
import { writeResultsSection } from '../results.js';

const dir = process.argv[2];
if (!dir) {
  console.error('usage: npx tsx bench/local-run/record.ts <run folder with report.json>');
  process.exit(2);
}
const r = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as RunReport;
const f = (e: EvalSummary | null | undefined) => (e ? `${e.pass1.toFixed(3)} (95% CI ${e.pass1_ci[0].toFixed(3)}–${e.pass1_ci[1].toFixed(3)})` : 'n/a');
const overlap = r.after_sft ? r.final.pass1_ci[0] <= r.after_sft.pass1_ci[1] : true;
const rows = r.iterations
  .map((i) => `| ${i.step} | ${i.reward_mean.toFixed(3)} | ${i.pass1 === null ? '' : i.pass1.toFixed(3)} | ${i.tokens_per_s.toFixed(0)} | ${i.seconds.toFixed(1)} |`)
  .join('\n');
const local = (r.spec as { data?: { local?: { holdout?: string } } }).data?.local;
writeResultsSection(
  'Local demo run',
  `npx parley run examples/local/demo.yaml --out ${dir} && npx tsx bench/local-run/record.ts ${dir}`,
  `
Seed ${r.seed}; wall time ${(r.wall_seconds / 60).toFixed(1)} min (the engine on one thread); held out by ${local?.holdout ?? 'pairs'}.
Held-out pass^1 over ${r.final.tasks} tasks × ${r.final.trials / r.final.tasks} trials: baseline ${f(r.baseline)}, after SFT ${f(r.after_sft)},
final ${f(r.final)}; final pass^k ${Object.entries(r.final.passk).map(([k, v]) => `k=${k} ${v.toFixed(3)}`).join(', ')}.
${overlap ? 'The final and after-SFT intervals overlap.' : 'The final interval lies above the after-SFT interval.'}

| step | training reward (informative groups) | held-out pass^1 | learner tokens/s | step seconds |
| ---: | ---: | ---: | ---: | ---: |
${rows}
`,
);
console.log(`recorded ${dir} in bench/RESULTS.md`);
