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
  // The engine's Python stubs (protoc + grpc_python_plugin from Debian's protobuf-compiler-grpc).
  const pyFresh = join(tmp, 'py');
  const pyGen = 'services/learner/engine/parley_engine/gen';
  try {
    execFileSync('sh', ['services/learner/engine/generate.sh', pyFresh], { stdio: ['ignore', 'ignore', 'inherit'] });
    const pa = listFiles(pyFresh).map((f) => relative(pyFresh, f)).filter((f) => !f.includes('__pycache__')).sort();
    const pb = listFiles(pyGen).map((f) => relative(pyGen, f)).filter((f) => !f.includes('__pycache__')).sort();
    if (pa.join('\n') !== pb.join('\n')) stale.push(`${pyGen}: file lists differ`);
    for (const f of pa) if (pb.includes(f) && readFileSync(join(pyFresh, f), 'utf8') !== readFileSync(join(pyGen, f), 'utf8')) stale.push(`${pyGen}/${f} differs`);
  } catch (e) {
    stale.push(`cannot regenerate the Python stubs (${e.message}); install protobuf-compiler protobuf-compiler-grpc`);
  }
  // The TrainingRun CRD, RBAC and values schema generated from the run spec.
  try {
    execFileSync('npx', ['tsx', 'services/controller/crd-generate.ts', '--check'], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    stale.push(`generated Kubernetes manifests are stale (${String(e.stderr ?? e.message).trim()}); run npx tsx services/controller/crd-generate.ts`);
  }
  if (stale.length) {
    console.error(`generated code in ${GEN} is stale; run \`npm run generate\` and commit:\n  ${stale.join('\n  ')}`);
    process.exit(1);
  }
  console.log(`generated code in ${GEN} and the engine's Python stubs is up to date (${a.length} TS files)`);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
