// Engine benchmark: the PyTorch engine's training-step time for the builtin model (learned and ALiBi
// positions), from services/learner/engine/bench_step.py, recorded in bench/RESULTS.md.
// Run: npx tsx bench/engine/bench.ts [--python PATH]   (default: the engine's interpreter, as parley run picks it)

import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { enginePython } from '../../services/learner/index.js';
import { writeResultsSection } from '../results.js';

const { values } = parseArgs({ options: { python: { type: 'string', default: enginePython() } } });
const engineDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'services', 'learner', 'engine');
const configs = [
  { batch: 16, seq: 256, dModel: 128, layers: 2, vocab: 1252 },
  { batch: 32, seq: 200, dModel: 128, layers: 2, vocab: 1252 },
];
const rows: string[] = [];
for (const c of configs) {
  process.stderr.write(`bench/engine: batch ${c.batch} × ${c.seq}\n`);
  const out = execFileSync(values.python!, ['bench_step.py', '--batch', String(c.batch), '--seq', String(c.seq), '--d-model', String(c.dModel), '--layers', String(c.layers), '--vocab', String(c.vocab)], { cwd: engineDir, encoding: 'utf8' });
  const line = out.trim().split('\n').at(-1)!;
  const r = JSON.parse(line) as Record<string, number>;
  rows.push(`| ${c.batch} × ${c.seq} | ${c.layers} × ${c.dModel}, vocab ${c.vocab} | ${JSON.stringify(r)} |`);
}
const body = `
Builtin model, one torch thread (torch 1.13, OpenBLAS), a PPO step with KL (reference forward) plus OptimStep, and ComputeLogprobs on the same batch. Raw output of bench_step.py per configuration:

| batch | model | result |
| --- | --- | --- |
${rows.join('\n')}
`;
process.stdout.write(body);
writeResultsSection('Engine step', 'npx tsx bench/engine/bench.ts', body);
