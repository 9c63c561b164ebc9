// A learner process on a real nats-server is SIGKILLed between steps, inside a step and between saving
// weights and committing; it resumes each time, and every trajectory is trained on once, in order.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { connectBus, type Bus } from '../services/core/bus/index.js';
import { CheckpointStore, consumedIdSet, runStreams, trajectoryStreamConfig } from '../services/learner/index.js';
import { fingerprint, readDoubleWeights } from '../services/learner/testing/trainer-double.js';
import { makeGroups, publishTrajectories } from '../services/learner/testing/trajectories.js';
import { haveNatsServer, startNatsServer, type NatsServer } from './fixtures/nats-server.js';

const CHILD = fileURLToPath(new URL('../services/learner/testing/crash-child.ts', import.meta.url));
const RUN = 'crash';
const GROUP = 4;
const GROUPS_PER_STEP = 2;
const STEPS = 10;

interface ChildEvent {
  event: string;
  step?: number;
  phase?: string;
  kind?: string;
}

/** A learner process whose stdout events can be awaited. */
class LearnerProcess {
  readonly proc: ChildProcess;
  readonly events: ChildEvent[] = [];
  private waiters: { pred: (e: ChildEvent) => boolean; resolve: () => void }[] = [];
  stderr = '';

  constructor(env: Record<string, string>) {
    this.proc = spawn(process.execPath, ['--import', 'tsx', CHILD], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    this.proc.stdout!.on('data', (b: Buffer) => {
      buf += b.toString();
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const e = JSON.parse(line) as ChildEvent;
        this.events.push(e);
        for (const w of [...this.waiters]) if (w.pred(e)) w.resolve();
      }
    });
    this.proc.stderr!.on('data', (b: Buffer) => (this.stderr = (this.stderr + b.toString()).slice(-4000)));
  }

  /** Resolves on the first event (past or future) matching `pred`; rejects if the process exits first. */
  until(pred: (e: ChildEvent) => boolean, what: string): Promise<void> {
    if (this.events.some(pred)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`learner exited (${code}) before ${what}; stderr: ${this.stderr}`));
      this.proc.once('exit', onExit);
      this.waiters.push({
        pred,
        resolve: () => {
          this.proc.off('exit', onExit);
          resolve();
        },
      });
    });
  }

  async kill9(): Promise<void> {
    const exited = new Promise((r) => this.proc.once('exit', r));
    this.proc.kill('SIGKILL');
    await exited;
  }

  async terminate(): Promise<number | null> {
    const exited = new Promise<number | null>((r) => this.proc.once('exit', (code) => r(code)));
    this.proc.kill('SIGTERM');
    return exited;
  }
}

const have = haveNatsServer();

describe.skipIf(!have)('learner crash recovery (real nats-server, learner in a child process)', () => {
  let server: NatsServer;
  let bus: Bus;
  let dir: string;
  beforeAll(async () => {
    server = await startNatsServer();
    bus = await connectBus(server.url);
    dir = mkdtempSync(join(tmpdir(), 'parley-learner-crash-'));
  });
  afterAll(async () => {
    await bus?.close();
    await server?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('kill -9 between steps, inside a step and before a commit: nothing lost, nothing counted twice, steps consecutive', async () => {
    const trajs = makeGroups(RUN, STEPS * GROUPS_PER_STEP, GROUP);
    await bus.ensureStream(trajectoryStreamConfig(RUN));
    await publishTrajectories(bus, RUN, trajs);
    // Copies under other dedup ids (a rollout retry past the stream's duplicate window).
    await publishTrajectories(bus, RUN, trajs.filter((_, i) => i % 7 === 0), (t) => `${t.id}#retry`);
    const env = {
      PARLEY_TEST_BUS_URL: server.url,
      PARLEY_TEST_RUN: RUN,
      PARLEY_TEST_CHECKPOINT_DIR: dir,
      PARLEY_TEST_GROUP_SIZE: String(GROUP),
      PARLEY_TEST_GROUPS_PER_STEP: String(GROUPS_PER_STEP),
      PARLEY_TEST_FB_DELAY_MS: '150',
    };
    const killed: string[] = [];
    const store = new CheckpointStore(dir);

    // 1. Between steps: right after step 2's checkpoint, before its acks are known to have landed.
    const a = new LearnerProcess(env);
    await a.until((e) => e.event === 'committed' && e.step === 2, 'step 2');
    await a.kill9();
    killed.push('after commit of step 2');

    // 2. Inside a step: during a ForwardBackward of step 4 (or whichever step is next).
    const b = new LearnerProcess(env);
    await b.until((e) => e.event === 'started', 'start');
    await b.until((e) => e.event === 'phase' && e.phase === 'forward_backward' && (e.step ?? 0) >= 4, 'a forward-backward of step 4');
    await b.kill9();
    const inFlight = b.events.filter((e) => e.event === 'phase').at(-1)!.step!;
    expect((await store.latest())!.step).toBe(inFlight - 1);
    killed.push(`inside step ${inFlight}`);

    // 3. After SaveWeights wrote the new version, before the checkpoint that would commit it.
    const c = new LearnerProcess({ ...env, PARLEY_TEST_COMMIT_DELAY_MS: '500' });
    await c.until((e) => e.event === 'committing' && e.kind === 'step' && (e.step ?? 0) >= 6, 'the commit of step 6');
    await c.kill9();
    // The new version's weights are on disk, but the checkpoint still points at the step before.
    const committed = (await store.latest())!;
    const pendingStep = c.events.filter((e) => e.event === 'committing').at(-1)!.step!;
    expect(committed.step).toBe(pendingStep - 1);
    expect(readdirSync(store.weightsDir)).toContain(`v${String(committed.policyVersion + 1).padStart(8, '0')}`);
    killed.push(`between SaveWeights and the checkpoint of step ${pendingStep}`);

    // 4. A last process runs to the end and stops cleanly.
    const d = new LearnerProcess(env);
    await d.until((e) => e.event === 'committed' && e.step === STEPS, `step ${STEPS}`);
    await vi.waitFor(async () => expect((await bus.streamInfo(runStreams(RUN).trajectories)).messages).toBe(0), { timeout: 20_000, interval: 200 });
    expect(await d.terminate()).toBe(0);
    expect(killed).toHaveLength(3);

    const history = await store.history();
    const steps = history.filter((r) => r.kind === 'step');
    // Consecutive step numbers and policy versions, each step exactly two whole groups.
    expect(steps.map((r) => r.step)).toEqual(Array.from({ length: STEPS }, (_, i) => i + 1));
    expect(steps.map((r) => r.policyVersion)).toEqual(Array.from({ length: STEPS }, (_, i) => i + 1));
    for (const r of steps) {
      expect(r.consumed.trained).toHaveLength(GROUP * GROUPS_PER_STEP);
      expect(new Set(r.consumed.trained.map((id) => id.split('/')[2])).size).toBe(GROUPS_PER_STEP);
    }
    // Every trajectory trained on exactly once: no id in two steps, none missing, none dropped.
    const all = steps.flatMap((r) => r.consumed.trained);
    expect(all).toHaveLength(trajs.length);
    expect(new Set(all)).toEqual(new Set(trajs.map((t) => t.id)));
    expect(consumedIdSet(history)).toEqual(new Set(trajs.map((t) => t.id)));
    const latest = history.at(-1)!;
    expect(latest.totals).toMatchObject({ consumed: trajs.length, trained: trajs.length, droppedStale: 0 });
    // The engine's weights saw each step's sequences once, in step order: no step applied twice.
    const byId = new Map(trajs.map((t) => [t.id, fingerprint(t.tokenIds)]));
    const weights = await readDoubleWeights(latest.weightsPath);
    expect(weights.history).toEqual(steps.map((r) => r.consumed.trained.map((id) => byId.get(id)!).sort()));
  }, 120_000);
});
