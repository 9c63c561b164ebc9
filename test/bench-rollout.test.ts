// `parley bench rollout`'s pipeline at a small size on the in-process bus: every (task, sample) arrives
// exactly once with workers crashed, and the report carries the figures the issue asks for.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { runRolloutBench, tau2Root } from '../services/rollout/bench-rollout.js';
import { describeTau2, tau2DataDir, tau2DomainDir } from './fixtures/tau2-data.js';

describeTau2('retail', 'rollout bench', () => {
  const out = mkdtempSync(join(tmpdir(), 'parley-bench-rollout-'));
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('loses nothing with crashed workers and reports async and batch-synchronous figures', async () => {
    const r = await runRolloutBench({
      tasks: 6, group: 2, workers: 2, concurrency: 4, killWorkerEvery: 5, out, dataDir: tau2DomainDir('retail'),
      capacityTokensPerS: 200_000, maxSequenceTokensPerS: 20_000, medianCompletionTokens: 20, seed: 3, ackWaitMs: 300,
    });
    for (const phase of [r, r.baseline_sync!]) {
      expect(phase).toMatchObject({ tasks_published: 12, trajectories_received: 12, lost: 0 });
      expect(phase.workers_killed).toBeGreaterThanOrEqual(1);
      expect(phase.efficiency).toBeGreaterThan(0);
      expect(phase.efficiency).toBeLessThanOrEqual(1.05);
      expect(Number.isFinite(phase.p50_turn_overhead_ms) && phase.p99_turn_overhead_ms >= phase.p50_turn_overhead_ms).toBe(true);
    }
    expect(r.async_over_sync_efficiency).toBeCloseTo(r.efficiency / r.baseline_sync!.efficiency, 9);
    const saved = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    for (const key of ['tasks_published', 'trajectories_received', 'duplicates_dropped', 'lost', 'backend_capacity_tokens_per_s', 'achieved_tokens_per_s', 'efficiency', 'p50_turn_overhead_ms', 'p99_turn_overhead_ms']) {
      expect(saved, key).toHaveProperty(key);
      expect(saved.baseline_sync, key).toHaveProperty(key);
    }
  }, 120_000);

  it('takes the τ² retail folder or the data root, and names both forms otherwise', () => {
    expect(tau2Root(tau2DomainDir('retail'))).toBe(tau2DataDir());
    expect(tau2Root(tau2DataDir())).toBe(tau2DataDir());
    expect(() => tau2Root(out)).toThrow(/retail folder .* or the data root/);
  });
});
