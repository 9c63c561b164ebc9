// The mock domain scored as tau2's evaluator scores it (src/tau2/evaluator/evaluator_env.py and
// evaluator.py): no target state when a task has neither actions nor env assertions, env assertions
// that must return a real bool, and initial_state.message_history counted as part of the conversation.

import { beforeAll, expect, it } from 'vitest';
import { describeTau2, tau2DomainDir } from '../../../../test/fixtures/tau2-data.js';
import type { Domain, Tau2Task } from '../../domain.js';
import { Environment } from '../../environment.js';
import { evaluateEpisode, historyMessages, type EvalMessage } from '../../evaluate.js';
import { loadTasks } from '../../tasks.js';
import { loadMockDomain } from './index.js';

const component = (r: ReturnType<typeof evaluateEpisode>, name: string) => r.components.find((c) => c.name === name)!;

describeTau2('mock', 'mock domain evaluation', () => {
  let domain: Domain;
  let tasks: Map<string, Tau2Task>;
  beforeAll(() => {
    const dir = tau2DomainDir('mock');
    domain = loadMockDomain(dir);
    tasks = new Map(loadTasks(`${dir}/tasks.json`).map((t) => [t.id, t]));
  });

  /** An environment with the task's initial state, after the given tool calls. */
  const played = (task: Tau2Task, calls: { name: string; args: Record<string, unknown> }[], d: Domain = domain) => {
    const env = new Environment(d);
    env.applyInitialState(task);
    for (const c of calls) env.call(c.name, c.args);
    const messages: EvalMessage[] = calls.map((c) => ({ role: 'assistant', content: '', toolCalls: [{ name: c.name, argumentsJson: JSON.stringify(c.args) }] }));
    return { env, messages };
  };

  it('passes the DB check of a task with neither actions nor env assertions, whatever the episode wrote', () => {
    const task = tasks.get('create_task_1_nl_eval')!;
    expect(task.evaluation_criteria?.actions ?? null).toBeNull();
    expect(task.evaluation_criteria?.env_assertions ?? null).toBeNull();
    const { env, messages } = played(task, [{ name: 'create_task', args: { user_id: 'user_1', title: 'Something else' } }]);
    const r = evaluateEpisode(env, task, messages, true);
    expect(component(r, 'DB')).toMatchObject({ value: 1, inBasis: true });
    expect(r.reward).toBe(1);
    // Empty lists are not null: the gold replay (nothing) is then the target, and the write breaks it.
    const empty = { ...task, evaluation_criteria: { ...task.evaluation_criteria!, actions: [] } };
    expect(component(evaluateEpisode(env, empty, messages, true), 'DB').value).toBe(0);
  });

  it('scores a task without evaluation criteria 1 when it stopped', () => {
    const task = { ...tasks.get('create_task_1')!, evaluation_criteria: null } as unknown as Tau2Task;
    const { env, messages } = played(task, [{ name: 'create_task', args: { user_id: 'user_1', title: 'x' } }]);
    expect(evaluateEpisode(env, task, messages, true).reward).toBe(1);
    expect(evaluateEpisode(env, task, messages, false).reward).toBe(0);
  });

  it('fails an env assertion whose function returns a truthy non-bool, as tau2 refuses it', () => {
    const task = tasks.get('create_task_1_with_env_assertions')!;
    // A Python function may return an int where a bool is declared; tau2 checks the type at run time.
    const withCount: Domain = { ...domain, assertions: { ...domain.assertions, count_tasks: (state) => Object.keys(state.db.root.tasks).length as unknown as boolean } };
    const gold = task.evaluation_criteria!.actions!.map((a) => ({ name: a.name, args: a.arguments ?? {} }));
    const { env, messages } = played(task, gold, withCount);
    expect(evaluateEpisode(env, task, messages, true).reward).toBe(1);
    const counted = {
      ...task,
      evaluation_criteria: { ...task.evaluation_criteria!, env_assertions: [{ env_type: 'assistant' as const, func_name: 'count_tasks', arguments: {} }] },
    };
    const r = evaluateEpisode(env, counted, messages, true);
    expect(component(r, 'ENV_ASSERTION')).toMatchObject({ value: 0, detail: expect.stringContaining("count_tasks raised Function count_tasks returned <class 'int'> instead of bool") });
    expect(r.reward).toBe(0);
  });

  it('counts the initial message history as part of the conversation', () => {
    const task = tasks.get('update_task_with_message_history')!;
    expect(historyMessages(task).map((m) => m.role)).toEqual(['user', 'assistant', 'tool', 'assistant']);
    // The history's create_task call is a gold action the episode itself never makes, and the history's
    // assistant text is what the agent communicated (ACTION and COMMUNICATE read the whole trajectory).
    const history = task.initial_state!.message_history as any[];
    const create = history[1].tool_calls[0];
    const variant: Tau2Task = {
      ...task,
      evaluation_criteria: {
        actions: [{ action_id: 'h', name: create.name, arguments: create.arguments, compare_args: ['user_id', 'title'] }],
        communicate_info: ['task_2'],
        reward_basis: ['ACTION', 'COMMUNICATE'],
      },
    };
    const { env, messages } = played(variant, []);
    const r = evaluateEpisode(env, variant, messages, true);
    expect(component(r, 'ACTION').value).toBe(1);
    expect(component(r, 'COMMUNICATE').value).toBe(1);
    expect(r.reward).toBe(1);
    // The task as given: the episode completes the task the history created.
    const done = played(task, [{ name: 'update_task_status', args: { task_id: 'task_2', status: 'completed' } }]);
    const scored = evaluateEpisode(done.env, task, done.messages, true);
    expect(component(scored, 'DB').value).toBe(1);
    expect(scored.reward).toBe(1);
  });
});
