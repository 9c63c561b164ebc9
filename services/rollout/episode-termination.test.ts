// How an episode ends in each mode: tau2's orchestrator (stops by the user only, max_steps and max_errors
// counted and checked as tau2 does, no horizon) and MUA-RL's rollout (horizon over user replies plus tool
// executions, terminal tools, replies cut at max_tokens, every end scored).

import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { RolloutTaskSchema } from '../core/gen/parley/v1/rollout_pb.js';
import { Termination } from '../core/gen/parley/v1/sandbox_pb.js';
import { UserStop } from '../core/gen/parley/v1/usersim_pb.js';
import { ParleyError } from '../core/errors.js';
import { DEFAULT_EPISODE_OPTIONS, runEpisode, type EpisodeOptions } from './episode.js';
import type { EpisodePorts } from './ports.js';

type Reply = { content?: string; tool?: string; finishReason?: string };
type UserAnswer = { content: string; stop?: UserStop } | Error;

interface Script {
  /** The policy's replies in order; the last one repeats. */
  policy: Reply[];
  /** The user's answers in order; the last one repeats. */
  user?: UserAnswer[];
  /** Tool results by tool name (default: ok, no error). */
  tools?: Record<string, { output: string; error?: boolean; terminal?: boolean }>;
}

interface Recorded {
  generations: number;
  userReplies: string[];
  toolCalls: string[];
  evaluate?: { termination: Termination; scoreAnyTermination?: boolean };
}

function scripted(s: Script): { ports: EpisodePorts; rec: Recorded } {
  const rec: Recorded = { generations: 0, userReplies: [], toolCalls: [] };
  const at = <T>(xs: T[], i: number) => xs[Math.min(i, xs.length - 1)]!;
  const ports = {
    sandbox: {
      listTasks: async () => ({ tasks: [] }),
      openSession: async () => ({ sessionId: 'base', tools: [], policy: 'p', forkSessionId: 's1', schemaDigest: '' }),
      forkSession: async () => ({ sessionIds: ['s1'] }),
      call: async (req: { toolName: string }) => {
        rec.toolCalls.push(req.toolName);
        const r = s.tools?.[req.toolName] ?? { output: 'ok' };
        return { output: r.output, error: r.error ?? false, terminal: r.terminal ?? false };
      },
      // The sandbox's own rule: stops are scored, other ends only when asked (sandbox/service.ts).
      evaluate: async (req: { termination: Termination; scoreAnyTermination?: boolean }) => {
        rec.evaluate = { termination: req.termination, scoreAnyTermination: req.scoreAnyTermination };
        const stop = [Termination.AGENT_STOP, Termination.USER_STOP, Termination.TRANSFER, Termination.OUT_OF_SCOPE].includes(req.termination);
        return { reward: stop || req.scoreAnyTermination ? 1 : 0, components: [], closed: true };
      },
      closeSession: async () => ({}),
    },
    user: {
      start: async () => ({ message: { content: 'I need help.' }, stop: UserStop.UNSPECIFIED }),
      reply: async (req: { agentMessage: { content: string } }) => {
        const a = at(s.user ?? [{ content: 'ok' }], rec.userReplies.length);
        rec.userReplies.push(req.agentMessage.content);
        if (a instanceof Error) throw a;
        return { message: { content: a.content }, stop: a.stop ?? UserStop.UNSPECIFIED };
      },
      end: async () => ({ found: true, turns: 0 }),
    },
    policy: {
      generate: async () => {
        const r = at(s.policy, rec.generations++);
        const toolCalls = r.tool ? [{ id: `c${rec.generations}`, name: r.tool, argumentsJson: '{}' }] : [];
        return {
          message: { content: r.content ?? '', toolCalls },
          promptTokenIds: [1],
          completionTokenIds: [2],
          completionLogprobs: [-0.1],
          finishReason: r.finishReason ?? (r.tool ? 'tool_calls' : 'stop'),
          parseError: '',
          policyVersion: 0n,
        };
      },
    },
  } as unknown as EpisodePorts;
  return { ports, rec };
}

const taskOf = (mode: 'mua' | 'tau2', horizon: number) => create(RolloutTaskSchema, { run: 'r', taskId: 't', domain: 'retail', groupId: 'g', sampleIndex: 0, horizon, mode });
const info = { scenario: '', taskJson: '{}' };
const opts = (o: Partial<EpisodeOptions> = {}): EpisodeOptions => ({ ...DEFAULT_EPISODE_OPTIONS, ...o });

describe('τ² mode', () => {
  it("passes the agent's ###STOP### to the user, and the user ends the episode", async () => {
    const { ports, rec } = scripted({ policy: [{ content: 'Done. ###STOP###' }], user: [{ content: 'Bye ###STOP###', stop: UserStop.STOP }] });
    const t = await runEpisode(ports, taskOf('tau2', 5), info, opts());
    expect([t.termination, t.reward]).toEqual([Termination.USER_STOP, 1]);
    expect(rec.userReplies).toEqual(['Done. ###STOP###']);
  });

  it('returns the output of transfer_to_human_agents and goes on until the user says ###TRANSFER###', async () => {
    const { ports, rec } = scripted({
      policy: [{ tool: 'transfer_to_human_agents' }, { content: 'You are being transferred to a human agent.' }],
      user: [{ content: '###TRANSFER###', stop: UserStop.TRANSFER }],
      tools: { transfer_to_human_agents: { output: 'Transfer successful', terminal: true } },
    });
    const t = await runEpisode(ports, taskOf('tau2', 5), info, opts());
    expect([t.termination, t.reward, rec.generations, rec.toolCalls]).toEqual([Termination.TRANSFER, 1, 2, ['transfer_to_human_agents']]);
    expect(rec.userReplies).toEqual(['You are being transferred to a human agent.']);
  });

  it('has no turn horizon: the task horizon does not end it', async () => {
    const { ports, rec } = scripted({ policy: [{ content: 'More?' }], user: [{ content: 'yes' }, { content: 'yes' }, { content: 'yes' }, { content: 'bye ###STOP###', stop: UserStop.STOP }] });
    const t = await runEpisode(ports, taskOf('tau2', 1), info, opts());
    expect([t.termination, rec.generations]).toEqual([Termination.USER_STOP, 4]);
  });

  it("counts max_steps per hop and skips the check while a tool result is pending, as tau2's orchestrator does", async () => {
    // Steps: the user's first message 1, a tool call 2 (not checked), its result 3, a tool call 4 (not
    // checked), its result 5. With max_steps 4 the episode ends after the second result: two generations.
    const { ports, rec } = scripted({ policy: [{ tool: 'get_user_details' }] });
    const t = await runEpisode(ports, taskOf('tau2', 0), info, opts({ maxSteps: 4 }));
    expect([t.termination, rec.generations, rec.toolCalls.length, t.reward]).toEqual([Termination.MAX_STEPS, 2, 2, 0]);
    expect(rec.evaluate).toEqual({ termination: Termination.MAX_STEPS, scoreAnyTermination: false });
  });

  it('ends on max_steps before the user answers, and a stop on the last step ends as MAX_STEPS', async () => {
    // user 1, agent text 2 (checked: below 3), user reply 3 → MAX_STEPS overrides the user's stop.
    const { ports, rec } = scripted({ policy: [{ content: 'Anything else?' }], user: [{ content: 'no ###STOP###', stop: UserStop.STOP }] });
    const t = await runEpisode(ports, taskOf('tau2', 0), info, opts({ maxSteps: 3 }));
    expect([t.termination, rec.userReplies.length, t.reward]).toEqual([Termination.MAX_STEPS, 1, 0]);
    const early = scripted({ policy: [{ content: 'Anything else?' }] });
    const e = await runEpisode(early.ports, taskOf('tau2', 0), info, opts({ maxSteps: 2 }));
    expect([e.termination, early.rec.userReplies.length]).toEqual([Termination.MAX_STEPS, 0]);
  });

  it('ends after max_errors tool errors', async () => {
    const { ports, rec } = scripted({ policy: [{ tool: 'bad' }], tools: { bad: { output: 'Error: no', error: true } } });
    const t = await runEpisode(ports, taskOf('tau2', 0), info, opts({ maxToolErrors: 3 }));
    expect([t.termination, rec.toolCalls.length]).toEqual([Termination.TOO_MANY_ERRORS, 3]);
  });

  it('passes a reply cut at max_tokens on to the user', async () => {
    const { ports, rec } = scripted({ policy: [{ content: 'Let me expl', finishReason: 'length' }], user: [{ content: 'bye ###STOP###', stop: UserStop.STOP }] });
    const t = await runEpisode(ports, taskOf('tau2', 0), info, opts());
    expect([t.termination, rec.userReplies]).toEqual([Termination.USER_STOP, ['Let me expl']]);
  });
});

describe('MUA mode', () => {
  it('counts user replies plus tool executions against the horizon and scores the episode however it ended', async () => {
    // tool (1), text → user reply (2), tool (3): a horizon of 3 is reached after three generations.
    const { ports, rec } = scripted({ policy: [{ tool: 'get_user_details' }, { content: 'Which order?' }, { tool: 'get_order_details' }, { content: 'x' }] });
    const t = await runEpisode(ports, taskOf('mua', 3), info, opts());
    expect([t.termination, rec.generations, rec.toolCalls.length, rec.userReplies.length]).toEqual([Termination.MAX_TURNS, 3, 2, 1]);
    expect(rec.evaluate).toEqual({ termination: Termination.MAX_TURNS, scoreAnyTermination: true });
    expect(t.reward).toBe(1);
  });

  it('ends at a terminal tool (MUA-RL terminal_tools)', async () => {
    const { ports, rec } = scripted({ policy: [{ tool: 'transfer_to_human_agents' }], tools: { transfer_to_human_agents: { output: 'Transfer successful', terminal: true } } });
    const t = await runEpisode(ports, taskOf('mua', 10), info, opts());
    expect([t.termination, rec.generations, t.reward]).toEqual([Termination.TRANSFER, 1, 1]);
  });

  it('ends a reply cut at max_tokens and scores it', async () => {
    const { ports, rec } = scripted({ policy: [{ content: 'Let me expl', finishReason: 'length' }] });
    const t = await runEpisode(ports, taskOf('mua', 10), info, opts());
    expect([t.termination, rec.userReplies.length, t.reward]).toEqual([Termination.MAX_TOKENS, 0, 1]);
    expect(rec.evaluate?.scoreAnyTermination).toBe(true);
  });

  it('scores a malformed tool call and a user-simulator failure', async () => {
    const bad = scripted({ policy: [{ content: '<tool_call>{', finishReason: 'malformed_tool_call' }] });
    const m = await runEpisode(bad.ports, taskOf('mua', 10), info, opts());
    expect([m.termination, m.reward]).toEqual([Termination.MALFORMED_TOOL_CALL, 1]);
    const down = scripted({ policy: [{ content: 'Hello?' }], user: [new ParleyError('internal', 'the user LLM failed')] });
    const u = await runEpisode(down.ports, taskOf('mua', 10), info, opts());
    expect([u.termination, u.reward]).toEqual([Termination.USER_SIMULATOR_ERROR, 1]);
  });

  it("does not end on the agent's ###STOP### (MUA-RL reads the stop word in user replies only) nor on tool errors", async () => {
    const { ports, rec } = scripted({
      policy: [{ tool: 'bad' }, { tool: 'bad' }, { content: 'Bye ###STOP###' }],
      user: [{ content: 'ok ###STOP###', stop: UserStop.STOP }],
      tools: { bad: { output: 'Error: no', error: true } },
    });
    const t = await runEpisode(ports, taskOf('mua', 10), info, opts({ maxToolErrors: 2 }));
    expect([t.termination, rec.userReplies]).toEqual([Termination.USER_STOP, ['Bye ###STOP###']]);
  });
});
