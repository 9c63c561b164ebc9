// Public surface of services/eval: pass^k estimates, the held-out evaluator every wiring calls, the plan
// of evaluations during training with its eval_completed event, and the run report.

export { evaluate, type EvalOptions, type EvalResult } from './evaluator.js';
export {
  dueEvalStep,
  evalCompletedEvent,
  evalCompletedMsgId,
  evalHorizon,
  evalName,
  heldOutRequest,
  heldOutTasks,
  isEvalStep,
  publishEvalCompleted,
  type EvalCompletedEvent,
  type HeldOutEpisodeSettings,
  type HeldOutRequest,
  type HeldOutSettings,
  type HeldOutTasks,
} from './held-out.js';
export { bootstrapMean, choose, passAtK, passHatK, passReport, type Estimate, type PassReport, type TaskTrials } from './passk.js';
export { rewardCurveSvg, summarizePass, summaryMarkdown, writeRunReport, type EvalSummary, type IterationRecord, type RunReport } from './run-report.js';
