// Which τ² task set an evaluation measures, and its reward basis: the release set (DB and COMMUNICATE, the
// leaderboard's) by default; a set whose basis holds NL_ASSERTION is refused rather than scored without it.

import { beforeAll, expect, it } from 'vitest';
import { join } from 'node:path';
import { describeTau2, tau2DataDir } from '../../test/fixtures/tau2-data.js';
import { ParleyError } from '../core/errors.js';
import { Registry } from '../core/metrics.js';
import { DEFAULT_EPISODE_OPTIONS, type TaskInfo } from '../rollout/episode.js';
import type { EpisodePorts } from '../rollout/ports.js';
import { loadDomains, resolveSandboxConfig, SandboxService } from '../sandbox/index.js';
import { checkedBasis, evaluate } from './evaluator.js';

/** The retail test split as the evaluators list it, from the default task set or `tasksFile`. */
function listed(tasksFile?: string) {
  const cfg = resolveSandboxConfig({ dataDir: tau2DataDir(), domains: [{ name: 'retail', ...(tasksFile ? { tasksFile } : {}) }], metricsPort: -1 });
  const sandbox = new SandboxService(cfg, loadDomains(cfg), new Registry());
  const r = sandbox.impl.listTasks({ domain: 'retail', split: 'test' });
  sandbox.stop();
  const info = new Map<string, TaskInfo>(r.tasks.map((t) => [t.id, { scenario: t.scenario, taskJson: t.taskJson }]));
  return { ids: r.tasks.map((t) => t.id), info, tasksFile: r.tasksFile };
}

describeTau2('retail', 'the evaluated task set and its reward basis', () => {
  let release: ReturnType<typeof listed>;
  let head: ReturnType<typeof listed>;
  beforeAll(() => {
    release = listed();
    head = listed(join(tau2DataDir(), 'retail', 'tasks.json'));
  });

  it('serves the release task set by default and names it, its basis DB and COMMUNICATE', () => {
    expect(release.tasksFile).toBe('tasks_release_37199f3.json');
    expect(release.ids.length).toBe(40);
    expect(checkedBasis(release.info, release.ids, release.tasksFile)).toEqual(['DB', 'COMMUNICATE']);
    expect(head.tasksFile).toBe('tasks.json');
  });

  it('refuses a pass^k over HEAD tasks, whose NL_ASSERTION would be skipped, naming data.tasksFile, before any episode', async () => {
    const untouched = new Proxy({}, { get: () => () => Promise.reject(new Error('no episode may start')) });
    const ports = { policy: untouched, user: untouched, sandbox: untouched } as unknown as EpisodePorts;
    const run = evaluate(ports, head.info, {
      run: 'r', domain: 'retail', taskIds: head.ids, k: 1, horizon: 0, mode: 'tau2', concurrency: 1,
      episode: DEFAULT_EPISODE_OPTIONS, seed: 0, label: 'x', tasksFile: head.tasksFile,
    });
    const err = await run.then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ParleyError);
    expect(err).toMatchObject({ code: 'failed_precondition', field: 'data.tasksFile' });
    expect((err as Error).message).toMatch(/^data\.tasksFile: \d+ of 40 evaluated tasks of tasks\.json .*NL_ASSERTION.*tasks_release_37199f3\.json/);
  });
});
