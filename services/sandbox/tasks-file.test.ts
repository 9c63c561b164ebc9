// The task set a domain is served from: τ²'s release set where the domain folder holds it (the leaderboard's,
// scored on DB and COMMUNICATE), tasks.json otherwise or when configured.

import { join } from 'node:path';
import { expect, it } from 'vitest';
import { describeTau2, tau2DataDir } from '../../test/fixtures/tau2-data.js';
import { loadDomains, resolveSandboxConfig, rewardBasis, unscoredComponents } from './index.js';

describeTau2('retail', 'the served task file', () => {
  it('defaults to tasks_release_37199f3.json for airline and retail, tasks.json for mock; a configured file wins', () => {
    const head = join(tau2DataDir(), 'retail', 'tasks.json');
    const cfg = resolveSandboxConfig({ dataDir: tau2DataDir(), domains: ['airline', 'mock', { name: 'retail' }], metricsPort: -1 });
    const d = loadDomains(cfg);
    expect(['airline', 'retail', 'mock'].map((n) => d.get(n)!.tasksFile)).toEqual(['tasks_release_37199f3.json', 'tasks_release_37199f3.json', 'tasks.json']);
    for (const n of ['airline', 'retail']) for (const t of d.get(n)!.tasks.values()) expect([t.id, rewardBasis(t), unscoredComponents(t)]).toEqual([t.id, ['DB', 'COMMUNICATE'], []]);
    const configured = loadDomains(resolveSandboxConfig({ dataDir: tau2DataDir(), domains: [{ name: 'retail', tasksFile: head }], metricsPort: -1 })).get('retail')!;
    expect(configured.tasksFile).toBe('tasks.json');
    const judged = [...configured.tasks.values()].filter((t) => unscoredComponents(t).length > 0);
    expect(judged.length).toBeGreaterThan(0);
    expect(judged.every((t) => rewardBasis(t).includes('NL_ASSERTION'))).toBe(true);
  });
});
