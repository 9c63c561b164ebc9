// Public surface of the sandbox service.

export { SandboxConfigSchema, resolveSandboxConfig, type SandboxConfig } from './config.js';
export type { Domain, DomainState, Tau2Task, ToolDef, ToolType } from './domain.js';
export { ToolError } from './domain.js';
export { DOMAIN_NAMES, loadDomain } from './domains/index.js';
export { Environment } from './environment.js';
export { evaluateEpisode, goldHashes, pyEquals, type EvaluationResult } from './evaluate.js';
export { parsePyJson, pyDumps, PyFloat, PyInt } from './pyjson.js';
export { replayTask, type ReplayResult } from './replay.js';
export { renderScenario } from './scenario.js';
export { serveSandbox, type RunningSandbox } from './serve.js';
export { loadDomains, SandboxService, type LoadedDomain } from './service.js';
export { COMPONENT_NAMES, DEFAULT_REWARD_BASIS, rewardBasis, unscoredComponents, type ComponentName } from './reward-basis.js';
export { RELEASE_TASKS_FILE, defaultTasksFile, loadSplits, loadTasks } from './tasks.js';
