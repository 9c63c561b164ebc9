// Gold replay: each task's gold actions on a fresh session, with every output and the final DB hash —
// the oracle format of tau2's evaluator, and a validator for users' own task files.

import type { Domain, Tau2Task } from './domain.js';
import { Environment } from './environment.js';
import { ToolArgumentError } from './tool-runner.js';

export interface ReplayResult {
  id: string;
  final_db_hash: string;
  outputs: string[];
  errors: boolean[];
}

/**
 * Replays one task's gold actions on a fresh environment (initial state applied). Tool errors are part of the
 * result (tau2 ignores them); schema violations are reported like tau2 reports a bad call, as `Error: ...`.
 */
export function replayTask(domain: Domain, task: Tau2Task): ReplayResult {
  const env = new Environment(domain);
  env.applyInitialState(task);
  const outputs: string[] = [];
  const errors: boolean[] = [];
  for (const action of task.evaluation_criteria?.actions ?? []) {
    try {
      const r = env.runFunction(action.requestor ?? 'assistant', action.name, action.arguments ?? {});
      if (r && typeof r === 'object' && 'output' in r) {
        outputs.push((r as { output: string }).output);
        errors.push((r as unknown as { error: boolean }).error);
      } else {
        outputs.push(String(r));
        errors.push(false);
      }
    } catch (e) {
      const msg = e instanceof ToolArgumentError || e instanceof Error ? e.message : String(e);
      outputs.push(`Error: ${msg}`);
      errors.push(true);
    }
  }
  return { id: task.id, final_db_hash: env.dbHash(), outputs, errors };
}
