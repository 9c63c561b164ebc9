// Which ends Evaluate scores: tau2's rule by default (only stops; evaluator.py gives every other end 0),
// and every end when the caller asks (MUA mode: MUA-RL's DB-hash reward has no termination gate).

import { beforeAll, expect, it } from 'vitest';
import { describeTau2, tau2DataDir } from '../../test/fixtures/tau2-data.js';
import { Registry } from '../core/metrics.js';
import { Role, type ChatMessage } from '../core/gen/parley/v1/chat_pb.js';
import { Termination } from '../core/gen/parley/v1/sandbox_pb.js';
import { loadDomains, resolveSandboxConfig, SandboxService } from './index.js';

describeTau2('mock', 'Evaluate by termination', () => {
  let sandbox: SandboxService;
  beforeAll(() => {
    const cfg = resolveSandboxConfig({ dataDir: tau2DataDir(), domains: ['mock'], metricsPort: -1 });
    sandbox = new SandboxService(cfg, loadDomains(cfg), new Registry());
  });

  /** Opens create_task_1, makes its gold call and evaluates the episode as ended by `termination`. */
  const episode = (termination: Termination, scoreAnyTermination?: boolean) => {
    const { sessionId } = sandbox.impl.openSession({ domain: 'mock', taskId: 'create_task_1', sessionId: '' });
    const args = '{"user_id": "user_1", "title": "Important Meeting"}';
    sandbox.impl.call({ sessionId, toolName: 'create_task', argumentsJson: args, callId: 'c1' });
    const messages = [{ role: Role.ASSISTANT, content: '', toolCalls: [{ id: 'c1', name: 'create_task', argumentsJson: args }] }] as unknown as ChatMessage[];
    return sandbox.impl.evaluate({ sessionId, taskId: '', termination, messages, closeSession: true, ...(scoreAnyTermination === undefined ? {} : { scoreAnyTermination }) });
  };

  it('scores only stops by default, as tau2 does', () => {
    expect(episode(Termination.USER_STOP).reward).toBe(1);
    for (const t of [Termination.MAX_TURNS, Termination.MAX_STEPS, Termination.MAX_TOKENS, Termination.USER_SIMULATOR_ERROR]) expect(episode(t).reward).toBe(0);
  });

  it('scores every end when asked (MUA mode), with the same components', () => {
    for (const t of [Termination.MAX_TURNS, Termination.CONTEXT_LIMIT, Termination.MALFORMED_TOOL_CALL, Termination.MAX_TOKENS, Termination.USER_SIMULATOR_ERROR]) {
      const r = episode(t, true);
      expect([Termination[t], r.reward]).toEqual([Termination[t], 1]);
      expect(r.components.find((c) => c.name === 'DB')?.value).toBe(1);
    }
  });
});
