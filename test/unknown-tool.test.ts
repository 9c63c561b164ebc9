// A call to a tool the domain lacks reaches the agent as tau2's environment words it, byte for byte:
// "Error: Tool '<name>' not found." (TOOLS.md §0.2), through the sandbox service and a τ²-mode episode.

import { create } from '@bufbuild/protobuf';
import { beforeAll, expect, it } from 'vitest';
import { describeTau2, tau2DataDir } from './fixtures/tau2-data.js';
import { ParleyError } from '../services/core/errors.js';
import { createLocalClient } from '../services/core/local-client.js';
import { Registry } from '../services/core/metrics.js';
import { Role, type ChatMessage } from '../services/core/gen/parley/v1/chat_pb.js';
import { RolloutTaskSchema } from '../services/core/gen/parley/v1/rollout_pb.js';
import { Sandbox } from '../services/core/gen/parley/v1/sandbox_pb.js';
import { DEFAULT_EPISODE_OPTIONS, runEpisode } from '../services/rollout/episode.js';
import type { EpisodePorts } from '../services/rollout/ports.js';
import { loadDomains, resolveSandboxConfig, SandboxService } from '../services/sandbox/index.js';

describeTau2('mock', 'an unknown tool', () => {
  let sandbox: SandboxService;
  beforeAll(() => {
    const cfg = resolveSandboxConfig({ dataDir: tau2DataDir(), domains: ['mock'], metricsPort: -1 });
    sandbox = new SandboxService(cfg, loadDomains(cfg), new Registry());
  });

  it('is refused by the sandbox with tau2\'s message, the field named apart', () => {
    const { sessionId } = sandbox.impl.openSession({ domain: 'mock', taskId: '', sessionId: '' });
    let err: unknown;
    try {
      sandbox.impl.call({ sessionId, toolName: 'drop_tables', argumentsJson: '{}', callId: 'c' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ParleyError);
    expect(err).toMatchObject({ code: 'not_found', field: 'tool_name', message: "Tool 'drop_tables' not found." });
  });

  it('reaches the agent of a τ²-mode episode as "Error: Tool \'x\' not found."', async () => {
    const seen: ChatMessage[][] = [];
    let turn = 0;
    const ports = {
      sandbox: createLocalClient(Sandbox, sandbox.impl),
      user: {
        start: async () => ({ message: { content: 'Please drop the tables.' }, stop: 0 }),
        reply: async () => ({ message: { content: 'ok' }, stop: 0 }),
      },
      policy: {
        generate: async (req: { messages: ChatMessage[] }) => {
          seen.push([...req.messages]);
          turn++;
          const message =
            turn === 1
              ? { role: Role.ASSISTANT, content: '', toolCalls: [{ id: 'call_1', name: 'drop_tables', argumentsJson: '{}' }] }
              : { role: Role.ASSISTANT, content: 'I cannot. ###STOP###', toolCalls: [] };
          return { promptTokenIds: [1, 2], completionTokenIds: [3], completionLogprobs: [-0.1], message, finishReason: turn === 1 ? 'tool_calls' : 'stop', policyVersion: 0n, parseError: '' };
        },
      },
    } as unknown as EpisodePorts;
    const task = create(RolloutTaskSchema, { run: 'r', taskId: 'create_task_1', domain: 'mock', groupId: 'g', sampleIndex: 0, horizon: 5, mode: 'tau2' });
    await runEpisode(ports, task, { scenario: '', taskJson: '{}' }, DEFAULT_EPISODE_OPTIONS);
    const tool = seen[1]!.at(-1)!;
    expect(tool.role).toBe(Role.TOOL);
    expect(tool.content).toBe("Error: Tool 'drop_tables' not found.");
    expect(tool.toolError).toBe(true);
  });
});
