// The controller as an explicit state machine: elects a leader, and while leading runs the informers,
// the keyed rate-limited work queue and its workers over the RunReconciler.

import { controllerMetrics, type ControllerMetrics } from './metrics.js';
import type { ControllerConfig } from './config.js';
import { LeaderElector } from './leader-election.js';
import { defaultControllerRateLimiter } from './rate-limiter.js';
import { RunReconciler, type ControllerDeps } from './reconciler.js';
import { RunInformers } from './informers.js';
import { WorkQueue } from './work-queue.js';

export type { ControllerDeps } from './reconciler.js';

/**
 * idle → (start) → candidate ⇄ leading → (stop) → stopping → stopped. Without leader election start()
 * goes straight to leading. Only a leader reconciles.
 */
export type ControllerState = 'idle' | 'candidate' | 'leading' | 'stopping' | 'stopped';

interface Leadership {
  queue: WorkQueue;
  reconciler: RunReconciler;
  informers: RunInformers;
  workers: Promise<void>[];
}

export class Controller {
  private state: ControllerState = 'idle';
  private readonly metrics: ControllerMetrics;
  private readonly elector: LeaderElector | undefined;
  private leadership: Leadership | undefined;
  private transition: Promise<void> = Promise.resolve();
  private readonly leadingWaiters: (() => void)[] = [];

  constructor(
    private readonly config: ControllerConfig,
    private readonly deps: ControllerDeps,
  ) {
    this.metrics = controllerMetrics(deps.registry);
    // Every series exists from the start (0), so rate() and increase() have something to work on.
    for (const result of ['success', 'requeue', 'error']) this.metrics.reconciles.inc({ result }, 0);
    if (config.leaderElect) {
      this.elector = new LeaderElector(
        {
          namespace: config.podNamespace,
          name: config.leaseName,
          identity: config.identity,
          leaseDurationMs: config.leaseDurationMs,
          renewDeadlineMs: config.renewDeadlineMs,
          retryPeriodMs: config.retryPeriodMs,
        },
        deps,
        { onStartedLeading: () => this.serialize(() => this.lead()), onStoppedLeading: () => this.serialize(() => this.stepDown('candidate')) },
      );
    }
  }

  get currentState(): ControllerState {
    return this.state;
  }

  /** Starts competing for leadership (or leads at once without election). Safe to call twice; never rejects. */
  async start(): Promise<void> {
    if (this.state !== 'idle') return;
    this.state = 'candidate';
    if (this.elector) this.elector.start();
    else await this.serialize(() => this.lead());
  }

  /** Resolves once this replica leads and its informers have listed (tests and readiness). */
  whenLeading(): Promise<void> {
    if (this.state === 'leading') return Promise.resolve();
    return new Promise((resolve) => this.leadingWaiters.push(resolve));
  }

  /** Queues a reconcile of `<namespace>/<name>` (no-op unless leading). */
  enqueue(key: string): void {
    this.leadership?.queue.add(key);
  }

  /** Stops the workers (finishing reconciles in flight), the informers and the Lease. Safe to call twice. */
  async stop(): Promise<void> {
    if (this.state === 'stopping' || this.state === 'stopped') return this.transition;
    this.state = 'stopping';
    await this.elector?.stop();
    await this.serialize(() => this.stepDown('stopped'));
  }

  /** Leadership changes run one at a time, in order. */
  private serialize(fn: () => Promise<void>): Promise<void> {
    this.transition = this.transition.then(fn, fn);
    return this.transition;
  }

  private async lead(): Promise<void> {
    if (this.state !== 'candidate' || this.leadership) return;
    const { deps, config } = this;
    const queue = new WorkQueue(
      defaultControllerRateLimiter(deps.clock, { baseMs: config.queueBaseMs, maxMs: config.queueMaxMs, qps: config.queueQps, burst: config.queueBurst }),
      deps.clock,
      { onDepth: (n) => this.metrics.queueDepth.set(n), onRetry: () => this.metrics.queueRetries.inc() },
    );
    const informers = new RunInformers({ ...deps, metrics: this.metrics }, { namespace: config.watchNamespace }, (key) => queue.add(key));
    const reconciler = new RunReconciler(config, deps, (key) => queue.add(key), informers);
    this.leadership = { queue, reconciler, informers, workers: [] };
    this.metrics.leader.set(1);
    await informers.start();
    for (let i = 0; i < config.workers; i++) this.leadership.workers.push(this.work(queue, reconciler));
    this.state = 'leading';
    for (const w of this.leadingWaiters.splice(0)) w();
  }

  private async stepDown(next: 'candidate' | 'stopped'): Promise<void> {
    const l = this.leadership;
    this.leadership = undefined;
    if (l) {
      await l.informers.stop();
      l.queue.shutDown();
      await Promise.all(l.workers);
      await l.reconciler.stop();
      this.metrics.leader.set(0);
      this.metrics.queueDepth.set(0);
    }
    if (this.state !== 'stopping' || next === 'stopped') this.state = next;
  }

  /** One worker: take a key, reconcile, then forget its backoff and requeue explicitly, or back off. */
  private async work(queue: WorkQueue, reconciler: RunReconciler): Promise<void> {
    for (;;) {
      const key = await queue.get();
      if (key === undefined) return;
      const end = this.metrics.reconcileSeconds.startTimer();
      try {
        const { requeueAfterMs } = await reconciler.reconcile(key);
        queue.forget(key);
        if (requeueAfterMs !== undefined) queue.addAfter(key, requeueAfterMs);
        this.metrics.reconciles.inc({ result: requeueAfterMs !== undefined && requeueAfterMs < this.config.resyncMs ? 'requeue' : 'success' });
      } catch (e) {
        this.metrics.reconciles.inc({ result: 'error' });
        this.deps.logger.warn({ run: key, err: e instanceof Error ? e.message : String(e), retries: queue.retries(key) }, 'reconcile failed; retrying with backoff');
        queue.addRateLimited(key);
      } finally {
        end();
        queue.done(key);
      }
    }
  }
}
