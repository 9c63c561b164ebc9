import { describe, expect, it } from 'vitest';
import { ParleyError } from '../core/errors.js';
import { DEFAULT_EPISODE_OPTIONS } from '../rollout/episode.js';
import { dueEvalStep, evalCompletedEvent, evalHorizon, evalName, heldOutRequest, heldOutTasks, isEvalStep, type HeldOutSettings } from './held-out.js';
import { passReport } from './passk.js';

const S: HeldOutSettings = {
  run: 'r',
  domain: 'local',
  split: 'test',
  k: 2,
  maxTasks: 2,
  everySteps: 3,
  steps: 10,
  horizons: [4, 8],
  horizonEverySteps: 5,
  mode: 'tau2',
  seed: 100,
  concurrency: 8,
  episode: { maxSteps: 30, maxToolErrors: 2, maxContextTokens: 1024, temperature: 0.7, topP: 0.95, maxTokensPerTurn: 32 },
};

describe('evaluation steps', () => {
  it('are the multiples of everySteps below the last step, and the last step', () => {
    expect(Array.from({ length: 12 }, (_, s) => s).filter((s) => isEvalStep(S, s))).toEqual([3, 6, 9, 10]);
    expect([0, 5, 10].filter((s) => isEvalStep({ everySteps: 0, steps: 10 }, s))).toEqual([10]);
    expect([4, 8].filter((s) => isEvalStep({ everySteps: 4, steps: 0 }, s))).toEqual([4, 8]);
    expect(evalName(S, 6)).toBe('step 6');
    expect(evalName(S, 10)).toBe('final');
  });

  it('due: the latest step not evaluated yet; passed ones are skipped; the last step always comes', () => {
    expect(dueEvalStep(S, 2, 0)).toBeUndefined();
    expect(dueEvalStep(S, 3, 0)).toBe(3);
    expect(dueEvalStep(S, 4, 3)).toBeUndefined();
    expect(dueEvalStep(S, 7, 0)).toBe(6);
    expect(dueEvalStep(S, 10, 3)).toBe(10);
    expect(dueEvalStep(S, 12, 9)).toBe(10);
    expect(dueEvalStep(S, 12, 10)).toBeUndefined();
    expect(dueEvalStep({ everySteps: 0, steps: 10 }, 9, 0)).toBeUndefined();
    expect(dueEvalStep({ everySteps: 0, steps: 0 }, 9, 0)).toBeUndefined();
  });
});

describe('heldOutRequest', () => {
  it("carries the run's horizon at the step (MUA), the episode settings, a seed and label per step, and the policy version", () => {
    const mua = { ...S, mode: 'mua' as const };
    const r = heldOutRequest(mua, { name: 'step 6', step: 6, policyVersion: 4, taskIds: ['a'] });
    expect(r).toMatchObject({ run: 'r', domain: 'local', taskIds: ['a'], k: 2, horizon: 8, mode: 'mua', concurrency: 8, seed: 106, label: 'step-6-6', minPolicyVersion: 4 });
    expect(r.episode).toEqual({ ...DEFAULT_EPISODE_OPTIONS, ...S.episode, worker: 'eval' });
    expect(heldOutRequest(mua, { name: 'after SFT', step: 0, policyVersion: 0, taskIds: [] })).toMatchObject({ label: 'after-SFT-0', horizon: 4, seed: 100 });
  });

  it('never applies the training horizon in τ² mode: tau2 ends episodes on its own stops and limits', () => {
    for (const step of [0, 6, 10]) expect(heldOutRequest(S, { name: 'x', step, policyVersion: 0, taskIds: [] }).horizon).toBe(0);
    expect(evalHorizon('tau2', { horizons: [4], everySteps: 1 }, 3)).toBe(0);
    expect(evalHorizon('mua', { horizons: [4, 8], everySteps: 1 }, Number.MAX_SAFE_INTEGER)).toBe(8);
  });
});

describe('heldOutTasks', () => {
  const task = (id: string) => ({ id, scenario: `s${id}`, taskJson: `{"id":"${id}"}` });
  it('lists the split in order, capped at maxTasks, and falls back to all tasks when the split is missing', async () => {
    const calls: string[] = [];
    const sandbox = {
      listTasks: async (req: { domain: string; split: string; taskIds?: string[]; idsOnly?: boolean }) => {
        calls.push(`${req.split}${req.idsOnly ? ' ids' : ''}${req.taskIds?.length ? ` [${req.taskIds.join(',')}]` : ''}`);
        if (req.split === 'test') throw new ParleyError('not_found', "split: no split 'test'", { field: 'split' });
        const all = ['x', 'y', 'z'].map(task);
        if (req.idsOnly) return { tasks: all.map((t) => ({ id: t.id, scenario: '', taskJson: '' })) };
        return { tasks: req.taskIds?.length ? all.filter((t) => req.taskIds!.includes(t.id)) : all };
      },
    };
    const h = await heldOutTasks(sandbox as never, S);
    expect(h.tasksFile).toBe('');
    // Ids first (one bus message may not hold a split's tasks), then the tasks kept, by id.
    expect(calls).toEqual(['test ids', ' ids', ' [x,y]']);
    expect(h.taskIds).toEqual(['x', 'y']);
    expect(h.info.get('y')).toEqual({ scenario: 'sy', taskJson: '{"id":"y"}' });
  });

  it('passes other failures on and refuses an empty split', async () => {
    const down = { listTasks: async () => Promise.reject(new ParleyError('unavailable', 'no sandbox')) };
    await expect(heldOutTasks(down as never, S)).rejects.toMatchObject({ code: 'unavailable' });
    const empty = { listTasks: async () => ({ tasks: [] }) };
    await expect(heldOutTasks(empty as never, S)).rejects.toMatchObject({ code: 'failed_precondition', field: 'data.evalSplit' });
  });
});

describe('evalCompletedEvent', () => {
  it('reports pass^1 as passRate with pass^k, the step, version and split', () => {
    const report = passReport([{ taskId: 'a', successes: 2, n: 2 }, { taskId: 'b', successes: 1, n: 2 }], 2, 1);
    const e = evalCompletedEvent({ ...S, taskFile: 'tasks-small.json' }, 10, 7, { report, meanReward: 0.75, episodes: 4, terminations: { '1': 4 }, basis: ['DB'] }, 12.5);
    expect(e).toMatchObject({ run: 'r', step: 10, final: true, policyVersion: 7, passRate: 0.75, passk: { '1': 0.75, '2': 0.5 }, tasks: 2, episodes: 4, seconds: 12.5, split: 'test', taskFile: 'tasks-small.json', basis: ['DB'] });
    expect(JSON.parse(JSON.stringify(e))).toEqual(e);
  });

  it('names the task file the sandbox served and the basis of the tasks', () => {
    const report = passReport([{ taskId: 'a', successes: 1, n: 1 }], 1, 1);
    const r = { report, meanReward: 1, episodes: 1, terminations: {}, basis: ['DB', 'COMMUNICATE'], tasksFile: 'tasks_release_37199f3.json' };
    expect(evalCompletedEvent(S, 10, 7, r, 1)).toMatchObject({ taskFile: 'tasks_release_37199f3.json', basis: ['DB', 'COMMUNICATE'] });
  });
});
