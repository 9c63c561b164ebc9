// A task's reward basis and the components of it this sandbox cannot compute, shared by Evaluate and by
// the evaluations that refuse to report a pass^k over a basis with a component left out.

import type { Tau2Task } from './domain.js';

export type ComponentName = 'DB' | 'COMMUNICATE' | 'ACTION' | 'ENV_ASSERTION' | 'NL_ASSERTION';

/** Every component, in the order reports list them. */
export const COMPONENT_NAMES: readonly ComponentName[] = ['DB', 'COMMUNICATE', 'ACTION', 'ENV_ASSERTION', 'NL_ASSERTION'];

/** tau2's default when a task's reward_basis is missing or null (data_model/tasks.py). */
export const DEFAULT_REWARD_BASIS: readonly ComponentName[] = ['DB', 'COMMUNICATE'];

/** The components whose product is the task's reward. */
export function rewardBasis(task: Pick<Tau2Task, 'evaluation_criteria'>): ComponentName[] {
  return [...((task.evaluation_criteria?.reward_basis ?? DEFAULT_REWARD_BASIS) as ComponentName[])];
}

/**
 * Components of the task's basis that Evaluate leaves out: NL_ASSERTION with assertions to judge needs an
 * LLM judge, which Parley does not have yet (tau2 scores an empty list 1, so that one is computed).
 */
export function unscoredComponents(task: Pick<Tau2Task, 'evaluation_criteria'>): ComponentName[] {
  const judged = rewardBasis(task).includes('NL_ASSERTION') && (task.evaluation_criteria?.nl_assertions?.length ?? 0) > 0;
  return judged ? ['NL_ASSERTION'] : [];
}
