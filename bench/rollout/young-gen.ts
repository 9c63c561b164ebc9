// Young-generation size A/B: `parley bench rollout` over a real nats-server, run alternately under
// V8's default semi-spaces (16 MB) and the 64 MB that bin/parley.js's shebang sets, in fresh processes,
// and the per-turn overhead of each run recorded in bench/RESULTS.md.
// Run: npx tsx bench/rollout/young-gen.ts --nats nats://127.0.0.1:4222 [--rounds 3 --tasks 96]

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { PhaseReport } from '../../services/rollout/bench-rollout.js';
import { percentile, writeResultsSection } from '../results.js';

const { values: v } = parseArgs({
  options: {
    nats: { type: 'string' },
    rounds: { type: 'string', default: '3' },
    tasks: { type: 'string', default: '96' },
    'data-dir': { type: 'string', default: process.env.PARLEY_TAU2_DATA ?? '../shared/data/tau2' },
  },
});
if (!v.nats) {
  process.stderr.write('young-gen: --nats <url> is required (start one with: nats-server -js -p 4222)\n');
  process.exit(2);
}
const rounds = Number(v.rounds);
if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds: expected a positive integer, got ${v.rounds}`);
const SIZES_MB = [16, 64];
const cli = join(dirname(fileURLToPath(import.meta.url)), '../../bin/parley.js');

async function runOnce(semiMb: number, round: number): Promise<PhaseReport> {
  const out = resolve(`out/young-gen/${semiMb}-${round}`);
  const args = [`--max-semi-space-size=${semiMb}`, cli, 'bench', 'rollout', '--nats', v.nats!, '--no-baseline', '--tasks', v.tasks!, '--group', '4',
    '--workers', '2', '--concurrency', '40', '--kill-worker-every', '100', '--capacity', '8000', '--max-seq-rate', '200', '--median-tokens', '40',
    '--data-dir', resolve(v['data-dir']!), '--out', out];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-4000)));
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  if (code !== 0) throw new Error(`bench rollout with ${semiMb} MB semi-spaces exited ${code}:\n${stderr}`);
  return JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as PhaseReport;
}

const rows: string[] = [];
const p50s: Record<number, number[]> = {};
for (let round = 1; round <= rounds; round++) {
  for (const mb of SIZES_MB) {
    process.stderr.write(`young-gen: round ${round}/${rounds}, ${mb} MB semi-spaces…\n`);
    const r = await runOnce(mb, round);
    (p50s[mb] ??= []).push(r.p50_turn_overhead_ms);
    rows.push(`| ${round} | ${mb} | ${r.trajectories_received}/${r.tasks_published} | ${r.lost} | ${r.p50_turn_overhead_ms.toFixed(2)} | ${r.turn_overhead_mean_ms.toFixed(2)} | ${r.gc_scavenges} | ${r.gc_scavenge_ms.toFixed(0)} | ${r.efficiency.toFixed(3)} |`);
  }
}
const [small, large] = SIZES_MB.map((mb) => percentile(p50s[mb]!, 50));
const body = `
\`parley bench rollout --nats … --no-baseline\` (${v.tasks} groups × 4, 2 workers × 40 episodes, a worker crashed every 100 trajectories, 8000 tokens/s simulated server), each run a fresh process, the two young-generation sizes alternating so that the machine's drift hits both.

| round | semi-space MB | received | lost | p50 turn overhead ms | mean turn overhead ms | scavenges | scavenge pause ms | efficiency |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
${rows.join('\n')}

Median p50 turn overhead: ${small!.toFixed(2)} ms with 16 MB, ${large!.toFixed(2)} ms with 64 MB (ratio ${(large! / small!).toFixed(2)}).
`;
process.stdout.write(body);
writeResultsSection('Young-generation size', `npx tsx bench/rollout/young-gen.ts --nats ${v.nats} --rounds ${rounds} --tasks ${v.tasks}`, body);
