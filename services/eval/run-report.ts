// A training run's report: report.json, a reward-curve picture (SVG) and a short Markdown summary.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PassReport } from './passk.js';

export interface IterationRecord {
  step: number;
  reward_mean: number;
  /** Held-out pass^1 when evaluated at this step, else null. */
  pass1: number | null;
  episodes: number;
  tokens_per_s: number;
  staleness: number;
  horizon: number;
  seconds: number;
  [extra: string]: number | null | string;
}

export interface EvalSummary {
  pass1: number;
  pass1_ci: [number, number];
  passk: Record<string, number>;
  tasks: number;
  trials: number;
}

export interface RunReport {
  run: string;
  seed: number;
  spec: unknown;
  baseline: EvalSummary;
  after_sft: EvalSummary | null;
  final: EvalSummary;
  iterations: IterationRecord[];
  wall_seconds: number;
  [extra: string]: unknown;
}

/** Condenses a PassReport for the run report. */
export function summarizePass(r: PassReport): EvalSummary {
  return {
    pass1: r.pass1.value,
    pass1_ci: [r.pass1.low, r.pass1.high],
    passk: Object.fromEntries(Object.entries(r.passk).map(([k, e]) => [k, e.value])),
    tasks: r.tasks,
    trials: r.trials,
  };
}

function esc(s: string): string {
  return s.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]!);
}

/** An SVG line chart of training reward and held-out pass^1 per step. */
export function rewardCurveSvg(report: RunReport, width = 720, height = 360): string {
  const pad = { l: 56, r: 16, t: 32, b: 44 };
  const its = report.iterations;
  const maxStep = Math.max(1, ...its.map((i) => i.step));
  const x = (s: number) => pad.l + (s / maxStep) * (width - pad.l - pad.r);
  const y = (v: number) => pad.t + (1 - Math.max(0, Math.min(1, v))) * (height - pad.t - pad.b);
  const line = (pts: [number, number][]) => pts.map(([a, b], i) => `${i ? 'L' : 'M'}${x(a).toFixed(1)},${y(b).toFixed(1)}`).join(' ');
  const reward = its.map((i) => [i.step, i.reward_mean] as [number, number]);
  const evals: [number, number][] = its.filter((i) => i.pass1 !== null).map((i) => [i.step, i.pass1!]);
  const grid = [0, 0.25, 0.5, 0.75, 1]
    .map((v) => `<line x1="${pad.l}" x2="${width - pad.r}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/><text x="${pad.l - 8}" y="${y(v) + 4}" text-anchor="end" font-size="11">${v}</text>`)
    .join('');
  const ref = (v: number | undefined, color: string, label: string) =>
    v === undefined || Number.isNaN(v)
      ? ''
      : `<line x1="${pad.l}" x2="${width - pad.r}" y1="${y(v)}" y2="${y(v)}" stroke="${color}" stroke-dasharray="4 4"/><text x="${width - pad.r - 4}" y="${y(v) - 4}" text-anchor="end" font-size="11" fill="${color}">${esc(label)} ${v.toFixed(3)}</text>`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="${pad.l}" y="20" font-size="14">${esc(report.run)}: training reward and held-out pass^1 (seed ${report.seed})</text>
${grid}
${ref(report.after_sft?.pass1, '#999', 'after SFT')}
<path d="${line(reward)}" fill="none" stroke="#1f77b4" stroke-width="2"/>
${evals.length ? `<path d="${line(evals)}" fill="none" stroke="#d62728" stroke-width="2"/>${evals.map(([s, v]) => `<circle cx="${x(s)}" cy="${y(v)}" r="3" fill="#d62728"/>`).join('')}` : ''}
<text x="${(width + pad.l) / 2}" y="${height - 10}" text-anchor="middle" font-size="12">learner step</text>
<text x="${pad.l + 8}" y="${height - pad.b - 8}" font-size="11" fill="#1f77b4">training reward (mean)</text>
<text x="${pad.l + 160}" y="${height - pad.b - 8}" font-size="11" fill="#d62728">held-out pass^1</text>
</svg>
`;
}

function fmt(e: EvalSummary | null): string {
  if (!e) return 'n/a';
  return `${e.pass1.toFixed(3)} (95% CI ${e.pass1_ci[0].toFixed(3)}–${e.pass1_ci[1].toFixed(3)}; ${e.tasks} tasks × ${Math.round(e.trials / Math.max(1, e.tasks))})`;
}

/** A short Markdown summary of the run. */
export function summaryMarkdown(r: RunReport): string {
  const last = r.iterations.at(-1);
  const ks = Object.keys(r.final.passk);
  return `# Run ${r.run}

* seed: ${r.seed}; wall time: ${(r.wall_seconds / 60).toFixed(1)} min; learner steps: ${last?.step ?? 0}
* held-out pass^1 — baseline: ${fmt(r.baseline)}; after SFT: ${fmt(r.after_sft)}; final: ${fmt(r.final)}
* final pass^k: ${ks.map((k) => `k=${k}: ${r.final.passk[k]!.toFixed(3)}`).join(', ')}
* training reward: first step ${r.iterations[0]?.reward_mean.toFixed(3) ?? 'n/a'}, last step ${last?.reward_mean.toFixed(3) ?? 'n/a'}

![reward curve](reward-curve.svg)
`;
}

/** Writes report.json, reward-curve.svg and summary.md into `dir`. */
export function writeRunReport(dir: string, report: RunReport): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'report.json'), JSON.stringify(report, null, 2) + '\n');
  writeFileSync(join(dir, 'reward-curve.svg'), rewardCurveSvg(report));
  writeFileSync(join(dir, 'summary.md'), summaryMarkdown(report));
}
