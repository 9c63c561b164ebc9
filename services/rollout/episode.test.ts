import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { RolloutTaskSchema } from '../core/gen/parley/v1/rollout_pb.js';
import { Termination } from '../core/gen/parley/v1/sandbox_pb.js';
import { DEFAULT_EPISODE_OPTIONS, EpisodeAbortedError, runEpisode } from './episode.js';
import type { EpisodePorts } from './ports.js';

/** A sandbox and user simulator that predate OpenSession.fork, Evaluate.close_session and End (`modern` = false), or know them. */
function fakePorts(calls: string[], generate: () => Promise<unknown>, modern = false): EpisodePorts {
  const rec = <T>(name: string, value: T) => async () => {
    calls.push(name);
    return value;
  };
  return {
    sandbox: {
      listTasks: rec('listTasks', { tasks: [] }),
      openSession: rec('openSession', { sessionId: 'base', tools: [], policy: 'be nice', forkSessionId: modern ? 's1' : '' }),
      forkSession: rec('forkSession', { sessionIds: ['s1'] }),
      call: rec('call', { output: 'ok', error: false, terminal: false }),
      evaluate: rec('evaluate', { reward: 1, components: [], closed: modern }),
      closeSession: rec('closeSession', {}),
    },
    user: {
      start: rec('user.start', { message: { content: 'hello' }, stop: 0 }),
      reply: rec('user.reply', { message: { content: 'thanks' }, stop: 0 }),
      ...(modern ? { end: rec('user.end', { found: true, turns: 1 }) } : {}),
    },
    policy: {
      generate: async () => {
        calls.push('generate');
        return generate();
      },
    },
  } as unknown as EpisodePorts;
}

const task = create(RolloutTaskSchema, { run: 'r', taskId: 't', domain: 'retail', groupId: 'g', sampleIndex: 0, horizon: 5, mode: 'mua' });
const info = { scenario: '', taskJson: '{}' };

describe('runEpisode with an abort signal', () => {
  it('stops at once when aborted mid-call: no further calls, not even CloseSession', async () => {
    const calls: string[] = [];
    const abort = new AbortController();
    const ports = fakePorts(calls, () => new Promise(() => undefined)); // a generation that never returns
    const episode = runEpisode(ports, task, info, { ...DEFAULT_EPISODE_OPTIONS, signal: abort.signal });
    while (!calls.includes('generate')) await new Promise((r) => setTimeout(r, 1));
    abort.abort();
    await expect(episode).rejects.toBeInstanceOf(EpisodeAbortedError);
    await new Promise((r) => setTimeout(r, 10));
    expect(calls).toEqual(['user.start', 'openSession', 'forkSession', 'generate']);
  });

  it('makes no call at all when the signal has already fired', async () => {
    const calls: string[] = [];
    const abort = new AbortController();
    abort.abort();
    await expect(runEpisode(fakePorts(calls, async () => ({})), task, info, { ...DEFAULT_EPISODE_OPTIONS, signal: abort.signal })).rejects.toBeInstanceOf(EpisodeAbortedError);
    expect(calls).toEqual([]);
  });
});

describe('runEpisode sandbox round trips', () => {
  const text = async () => ({ message: { content: 'Is there anything else?', toolCalls: [] }, promptTokenIds: [1], completionTokenIds: [2], completionLogprobs: [-0.1], finishReason: 'stop', policyVersion: 0n });
  // One user reply fills a horizon of 1: the episode ends there with the conversation still open.
  const oneTurn = create(RolloutTaskSchema, { ...task, horizon: 1 });

  it('opens and forks in one call, closes with Evaluate and releases the conversation the user did not end', async () => {
    const calls: string[] = [];
    const t = await runEpisode(fakePorts(calls, text, true), oneTurn, info);
    expect([t.reward, t.termination, t.terminationDetail], String(t.terminationDetail)).toEqual([1, Termination.MAX_TURNS, '']);
    expect(calls).toEqual(['user.start', 'openSession', 'generate', 'user.reply', 'evaluate', 'user.end']);
  });

  it('falls back to ForkSession and CloseSession with an older sandbox', async () => {
    const calls: string[] = [];
    const t = await runEpisode(fakePorts(calls, text), oneTurn, info);
    expect([t.reward, t.termination, t.terminationDetail], String(t.terminationDetail)).toEqual([1, Termination.MAX_TURNS, '']);
    expect(calls).toEqual(['user.start', 'openSession', 'forkSession', 'generate', 'user.reply', 'evaluate', 'closeSession']);
  });
});
