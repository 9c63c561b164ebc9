// The in-process actors of a local run or evaluation: sandbox, user simulator and policy behind typed
// local clients (the same shapes as their gRPC and NATS clients), with the episode settings of a spec.

import type { ClientOf } from '../../core/grpc.js';
import { createLocalClient } from '../../core/local-client.js';
import type { Logger } from '../../core/logger.js';
import type { Registry } from '../../core/metrics.js';
import { Policy } from '../../core/gen/parley/v1/policy_pb.js';
import { Sandbox } from '../../core/gen/parley/v1/sandbox_pb.js';
import { UserSimulator } from '../../core/gen/parley/v1/usersim_pb.js';
import { createPolicyService, policyMetrics, type ChatModel, type PolicyBackend } from '../../policy/index.js';
import { DEFAULT_EPISODE_OPTIONS, type EpisodeOptions, type TaskInfo } from '../../rollout/episode.js';
import type { EpisodePorts } from '../../rollout/ports.js';
import { loadDomains, resolveSandboxConfig, SandboxService, type LoadedDomain } from '../../sandbox/index.js';
import { UserSimulatorService, parseUserSimConfig } from '../../usersim/index.js';
import type { RunSpec } from '../run-spec.js';

export interface LocalActors {
  ports: EpisodePorts;
  policy: ClientOf<typeof Policy>;
  domain: LoadedDomain;
  info: Map<string, TaskInfo>;
  /** The file name of the task set the sandbox serves (ListTasks' tasks_file). */
  tasksFile: string;
  close(): void;
}

export interface ActorOptions {
  spec: RunSpec;
  /** Folder holding <domain>/ (db.json, tasks.json, …). */
  dataRoot: string;
  /** The domain's folder when it is not <dataRoot>/<domain>. */
  domainDir?: string;
  model: ChatModel;
  backend: PolicyBackend;
  registry: Registry;
  logger: Logger;
  /** User simulator settings (llm mode needs baseUrl and model). */
  user?: Record<string, unknown>;
}

/** Starts the in-process actors. Throws naming a missing data folder or a bad user-simulator setting. */
export async function startLocalActors(o: ActorOptions): Promise<LocalActors> {
  const name = o.spec.data.domain;
  const sbConfig = resolveSandboxConfig({
    dataDir: o.dataRoot,
    domains: [{ name, dataDir: o.domainDir, tasksFile: o.spec.data.tasksFile }],
    metricsPort: -1,
    maxSessions: 100_000,
  });
  const domains = loadDomains(sbConfig);
  const sandbox = new SandboxService(sbConfig, domains, o.registry);
  const users = new UserSimulatorService({ config: parseUserSimConfig({ mode: 'scripted', maxConversations: 100_000, ...o.user }), logger: o.logger, registry: o.registry });
  const policy = createPolicyService({
    config: {
      modelName: o.spec.model.name,
      maxContextTokens: o.spec.model.maxContextTokens,
      defaultMaxTokens: o.spec.rollout.maxTokensPerTurn,
      enableThinking: false,
      adapterPrefix: 'policy',
      keepAdapters: 2,
      initialPolicyVersion: 0,
      prefixCacheConversations: 100_000,
      prefixCacheTokens: 50_000_000,
      driftCheckRate: 0.05,
    },
    model: o.model,
    backend: o.backend,
    metrics: policyMetrics(o.registry),
    logger: o.logger,
  });
  const policyClient = createLocalClient(Policy, policy);
  const ports: EpisodePorts = { policy: policyClient, sandbox: createLocalClient(Sandbox, sandbox.impl), user: createLocalClient(UserSimulator, users as never) };
  const listed = await ports.sandbox.listTasks({ domain: name, split: '' });
  return {
    ports,
    policy: policyClient,
    domain: domains.get(name)!,
    info: new Map(listed.tasks.map((t) => [t.id, { scenario: t.scenario, taskJson: t.taskJson }])),
    tasksFile: listed.tasksFile,
    close: () => {
      sandbox.stop();
      users.close();
    },
  };
}

/** Episode settings from the spec. */
export function episodeOptions(spec: RunSpec, worker = 'eval'): EpisodeOptions {
  return {
    ...DEFAULT_EPISODE_OPTIONS,
    maxSteps: spec.rollout.maxSteps,
    maxToolErrors: spec.rollout.maxToolErrors,
    maxContextTokens: spec.model.maxContextTokens,
    temperature: spec.rollout.temperature,
    topP: spec.rollout.topP,
    maxTokensPerTurn: spec.rollout.maxTokensPerTurn,
    worker,
  };
}

/** The evaluation task ids of a domain: its eval split (capped by evaluation.maxTasks), else all tasks. */
export function evalTaskIds(spec: RunSpec, d: LoadedDomain): string[] {
  const all = d.splits[spec.data.evalSplit] ?? [...d.tasks.keys()];
  return spec.evaluation.maxTasks > 0 ? all.slice(0, spec.evaluation.maxTasks) : all;
}
