// Fails when the committed generated code in services/core/gen differs from what `buf generate` produces now.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, statSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

const GEN = 'services/core/gen';

function listFiles(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...listFiles(p));
    else out.push(p);
  }
  return out;
}

if (process.argv.includes('--stamp')) process.exit(0);
const tmp = mkdtempSync(join(tmpdir(), 'parley-gen-'));
try {
  execFileSync('npx', ['buf', 'generate', '-o', tmp], { stdio: ['ignore', 'ignore', 'inherit'] });
  const fresh = join(tmp, GEN);
  const a = listFiles(fresh).map((f) => relative(fresh, f)).sort();
  const b = listFiles(GEN).map((f) => relative(GEN, f)).sort();
  const stale = [];
  if (a.join('\n') !== b.join('\n')) stale.push(`file lists differ: generated [${a}] vs committed [${b}]`);
  for (const f of a) {
    if (!b.includes(f)) continue;
    if (readFileSync(join(fresh, f), 'utf8') !== readFileSync(join(GEN, f), 'utf8')) stale.push(`${f} differs`);
  }
  if (stale.length) {
    console.error(`generated code in ${GEN} is stale; run \`npm run generate\` and commit:\n  ${stale.join('\n  ')}`);
    process.exit(1);
  }
  console.log(`generated code in ${GEN} is up to date (${a.length} files)`);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
