// Prints one closing line "N passed, N failed, N skipped" over the vitest JSON report and the Python unittest log.
import { existsSync, readFileSync } from 'node:fs';

const [vitestJson, unittestLog] = process.argv.slice(2);
let passed = 0;
let failed = 0;
let skipped = 0;
if (vitestJson && existsSync(vitestJson)) {
  const r = JSON.parse(readFileSync(vitestJson, 'utf8'));
  passed += r.numPassedTests ?? 0;
  // A file that fails to load has no test results but must count as a failure.
  const brokenFiles = (r.testResults ?? []).filter((t) => t.status === 'failed' && (t.assertionResults ?? []).length === 0).length;
  failed += (r.numFailedTests ?? 0) + brokenFiles;
  skipped += (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
} else {
  failed += 1;
}
if (unittestLog && existsSync(unittestLog)) {
  const log = readFileSync(unittestLog, 'utf8');
  const ran = /Ran (\d+) tests?/.exec(log);
  const bad = /FAILED \((.*)\)/.exec(log);
  let f = 0;
  let s = 0;
  if (bad) for (const m of bad[1].matchAll(/(failures|errors|skipped)=(\d+)/g)) m[1] === 'skipped' ? (s += +m[2]) : (f += +m[2]);
  const sk = /OK \(skipped=(\d+)\)/.exec(log);
  if (sk) s += +sk[1];
  if (ran) {
    passed += +ran[1] - f - s;
    failed += f;
    skipped += s;
  }
}
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 ? 1 : 0);
