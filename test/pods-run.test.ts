// The cluster path end to end on one machine: k8s/examples/cpu-small.yaml (3 steps) rendered by the
// controller and run as local pods (`parley run --pods`) over a real nats-server with the real PyTorch
// engines, while the learner, a policy, the coordinator and the rollout worker are SIGKILLed mid-run.
// Asserted on sets: steps 1..3 each committed once, no trajectory trained twice, every policy replica
// loaded the versions in order up to the last, the final evaluation published.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '../services/core/logger.js';
import { runPods, type PodsReport } from '../services/controller/pods/pods-run.js';
import { exampleRun } from '../services/controller/testing/harness.js';
import { CheckpointStore } from '../services/learner/checkpoint-store.js';
import { haveNatsServer } from './fixtures/nats-server.js';

// Kept after a failure (the pods' logs say why); PARLEY_KEEP_TEST_OUT=1 keeps it always.
const out = mkdtempSync(join(tmpdir(), 'parley-pods-'));
let passed = 0;
afterAll(() => {
  if (passed === 4 && !process.env.PARLEY_KEEP_TEST_OUT) rmSync(out, { recursive: true, force: true });
  else console.warn(`pods run output kept in ${out}`);
});

describe.runIf(haveNatsServer())('parley run --pods (cpu-small, 3 steps, kills)', () => {
  let report: PodsReport;

  it('trains 3 steps from the controller’s own pods while actors are killed', async () => {
    const run = exampleRun('cpu-small', (r) => {
      (r.spec.algorithm as { steps: number }).steps = 3;
    });
    const lines: string[] = [];
    report = await runPods(run, {
      out,
      logger: createLogger('pods-test', 'silent'),
      timeoutMs: 9 * 60_000,
      backoffBaseMs: 500,
      backoffMaxMs: 4000,
      kills: [
        { group: 'learner', afterStep: 1 },
        { group: 'policy', afterStep: 1 },
        { group: 'coordinator', afterStep: 2 },
        { group: 'rollout', afterStep: 2 },
      ],
      progress: { status: () => {}, log: (l) => lines.push(l) },
    });
    expect(report.iterations.map((i) => i.step)).toEqual([1, 2, 3]);
    expect(report.kills.map((k) => k.pod.replace(/-[0-9a-f]{10}-[0-9a-z]{5}$|-0$/, ''))).toEqual(['cpu-small-learner', 'cpu-small-policy', 'cpu-small-coordinator', 'cpu-small-rollout']);
    for (const k of report.kills) expect(report.pods[k.pod], k.pod).toBeGreaterThanOrEqual(1);
    passed++;
  }, 10 * 60_000);

  it('loaded every version in order on each policy replica, the one killed included', () => {
    const replicas = Object.keys(report.weights_loaded);
    expect(replicas).toHaveLength(2);
    for (const r of replicas) {
      const v = report.weights_loaded[r]!;
      expect(v.at(-1), r).toBe(3);
      for (let i = 1; i < v.length; i++) expect(v[i]!, r).toBeGreaterThan(v[i - 1]!);
    }
    // The replica that was not killed saw every version.
    const killed = report.kills.find((k) => k.pod.includes('-policy-'))!.pod;
    expect(report.weights_loaded[replicas.find((r) => r !== killed)!]).toEqual([1, 2, 3]);
    for (const v of ['1', '2', '3']) expect(report.weight_sync_seconds[v]).toBeGreaterThanOrEqual(0);
    passed++;
  });

  it('published the final held-out evaluation', () => {
    expect(report.final).toMatchObject({ step: 3, final: true });
    expect(typeof report.final!.passRate).toBe('number');
    expect(report.iterations.at(-1)!.pass1).toBe(report.final!.passRate);
    passed++;
  });

  it('trained each step once and no trajectory twice (the learner’s checkpoint ledger)', async () => {
    const learner = Object.keys(report.pods).find((p) => p.endsWith('-learner-0'))!;
    const store = new CheckpointStore(join(out, 'pods', learner, 'volumes/data/cpu-small/checkpoints'));
    const records = await store.history(0);
    const steps = records.filter((r) => r.kind === 'step').map((r) => r.step);
    expect(steps).toEqual([1, 2, 3]);
    // Every trajectory the learner took is accounted once: trained, or dropped with a reason.
    const all = records.flatMap((r) => [...r.consumed.trained, ...r.consumed.stale, ...r.consumed.zeroVariance, ...r.consumed.incomplete]);
    expect(new Set(all).size).toBe(all.length);
    // Each step trained groupsPerStep groups (4), each with at least the learner's minimum group size (2 of 4:
    // a group whose samples were cut off by a kill is trained once its timeout passes).
    for (const r of records.filter((x) => x.kind === 'step')) {
      const groups = new Map<string, number>();
      for (const id of r.consumed.trained) groups.set(id.split('/')[2]!, (groups.get(id.split('/')[2]!) ?? 0) + 1);
      expect(groups.size, `step ${r.step}`).toBe(4);
      for (const [g, n] of groups) expect(n, `step ${r.step} ${g}`).toBeGreaterThanOrEqual(2);
    }
    passed++;
  });
});
