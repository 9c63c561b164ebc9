// The scenario text ListTasks returns for a task: the user simulator's own rendering of a tau2
// user_scenario (TOOLS.md §4.4), so the sandbox and the user simulator can never disagree on it.

import { renderUserScenario } from '../usersim/scenario.js';
import type { UserScenario } from '../usersim/task-schema.js';
import type { Tau2Task } from './domain.js';

/** The scenario text of a task; '' when the task has no user_scenario. */
export function renderScenario(task: Tau2Task): string {
  return task.user_scenario ? renderUserScenario(task.user_scenario as UserScenario) : '';
}
