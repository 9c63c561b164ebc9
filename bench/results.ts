// Writes a benchmark's section into bench/RESULTS.md (replacing an earlier section of the same title),
// stamped with the machine, the command and the date.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem, type as osType, release } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const RESULTS = join(dirname(fileURLToPath(import.meta.url)), 'RESULTS.md');

/** The p-th percentile of `xs` (nearest rank, from below); NaN when empty. */
export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}

/** One line describing this machine. */
export function machineLine(): string {
  const c = cpus();
  return `${c.length} × ${c[0]?.model.trim() ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ${osType()} ${release()}, Node ${process.version}`;
}

/** Replaces (or appends) `## <title>` in bench/RESULTS.md with `body`, adding machine, command and date. */
export function writeResultsSection(title: string, command: string, body: string): void {
  const header = '# Benchmark results\n\nEach section is written by its benchmark. Compare ratios within one run: these machines are shared and noisy.\n';
  const text = existsSync(RESULTS) ? readFileSync(RESULTS, 'utf8') : header;
  const section = `## ${title}\n\n* machine: ${machineLine()}\n* command: \`${command}\`\n* date: ${new Date().toISOString()}\n\n${body.trim()}\n`;
  const re = new RegExp(`## ${title.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n[\\s\\S]*?(?=\\n## |$)`);
  const next = re.test(text) ? text.replace(re, section) : `${text.trimEnd()}\n\n${section}`;
  writeFileSync(RESULTS, next.endsWith('\n') ? next : next + '\n');
}
