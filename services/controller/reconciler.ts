// Reconciles one TrainingRun: an ordered list of idempotent steps (finalizer, validate, streams, events,
// config, observe, workloads, prune, restarts), then a status computed from what they saw, then an
// explicit requeue. Deletion deletes the run's streams before the finalizer is released.

import type { V1Pod } from '@kubernetes/client-node';
import type { Bus } from '../core/bus/index.js';
import type { Logger } from '../core/logger.js';
import type { Registry } from '../core/metrics.js';
import { applyObject, deleteObject } from './apply.js';
import { desiredObjects, desiredReplicas } from './actor-workloads.js';
import type { Clock } from './clock.js';
import type { ControllerConfig } from './config.js';
import type { KubeClient } from './kube-client.js';
import { GROUPS, LABEL_GROUP, LABEL_MANAGED_BY, LABEL_RUN, MANAGED_BY, selectorString, type GroupName } from './labels.js';
import { controllerMetrics, forgetRun, runMetrics, type ControllerMetrics, type RunMetrics } from './metrics.js';
import { deleteRunStreams, provisionRunStreams } from './nats-provision.js';
import { observeGroup } from './restarts.js';
import type { RunCache } from './informers.js';
import { RunEventsTracker } from './run-events.js';
import { computeStatus, isFinal, type ObservedGroup } from './run-status.js';
import { recordEvent } from './run-k8s-events.js';
import { checkRun, type SpecCheck } from './spec-validation.js';
import { FINALIZER, PHASES, parseRunKey, type Phase, type TrainingRun } from './training-run.js';

/** What every long-running part of the controller is built from (tests pass their own). */
export interface ControllerDeps {
  k8s: KubeClient;
  bus: Bus;
  logger: Logger;
  registry: Registry;
  clock: Clock;
  /** Random source in [0,1) for backoff jitter. */
  random?: () => number;
}

export interface ReconcileOutcome {
  /** Reconcile again after this many ms (explicit requeue); undefined: only on the next change. */
  requeueAfterMs: number | undefined;
}

interface Ctx {
  key: string;
  run: TrainingRun;
  check?: SpecCheck;
  /** A step that failed after which reconciling continued; rethrown after the status is written. */
  failure?: unknown;
  busError?: string;
  groups: ObservedGroup[];
  replace: { group: GroupName; pods: V1Pod[] }[];
  scaleToZero: boolean;
  requeue: number[];
}

type Step = { name: string; run: (ctx: Ctx) => Promise<'next' | 'status'> };

export class RunReconciler {
  readonly events: RunEventsTracker;
  private readonly metrics: ControllerMetrics;
  private readonly runMetrics: RunMetrics;
  private readonly phases = new Map<string, Phase>();
  private readonly countedRestarts = new Map<string, number>();
  /** Pods this controller deleted, per run, until the cache stops showing them (client-go's "expectations"). */
  private readonly deletedPods = new Map<string, Set<string>>();
  private readonly steps: Step[];

  /**
   * `cache` (the informers) answers the reads a reconcile repeats for every run (its pods, Deployments
   * and StatefulSets); without one, they are listed through the API server.
   */
  constructor(
    private readonly config: ControllerConfig,
    private readonly deps: ControllerDeps,
    onProgress: (key: string) => void,
    private readonly cache?: RunCache,
  ) {
    this.metrics = controllerMetrics(deps.registry);
    this.runMetrics = runMetrics(deps.registry);
    this.events = new RunEventsTracker({ bus: deps.bus, logger: deps.logger, clock: deps.clock, metrics: this.runMetrics }, onProgress);
    this.steps = [
      { name: 'finalizer', run: (c) => this.ensureFinalizer(c) },
      { name: 'validate', run: async (c) => this.validate(c) },
      { name: 'streams', run: (c) => this.provisionStreams(c) },
      { name: 'observe', run: (c) => this.observe(c) },
      { name: 'actors', run: (c) => this.applyActors(c) },
      { name: 'restarts', run: (c) => this.replaceFailedPods(c) },
    ];
  }

  /**
   * Reconciles the run behind `key` (`<namespace>/<name>`). Rejects with KubeApiError (e.g. 409 when
   * the run changed meanwhile) or BusError; the caller requeues with backoff. A status reflecting what
   * was seen is written before a step failure is rethrown.
   */
  async reconcile(key: string): Promise<ReconcileOutcome> {
    const { namespace, name } = parseRunKey(key);
    const run = await this.deps.k8s.getRun(namespace, name);
    if (!run) {
      await this.forget(key);
      return { requeueAfterMs: undefined };
    }
    if (run.metadata.deletionTimestamp) return this.finalize(key, run);
    const ctx: Ctx = { key, run, groups: [], replace: [], scaleToZero: false, requeue: [this.config.resyncMs] };
    for (const step of this.steps) {
      try {
        if ((await step.run(ctx)) === 'status') break;
      } catch (e) {
        this.deps.logger.warn({ run: key, step: step.name, err: (e as Error).message }, 'reconcile step failed');
        ctx.failure = e;
        break;
      }
    }
    await this.writeStatus(ctx);
    if (ctx.failure) throw ctx.failure;
    return { requeueAfterMs: Math.max(0, Math.min(...ctx.requeue)) };
  }

  /** Stops following every run's events and clears the run series (a replica that is not the leader exports none). Safe to call twice. */
  async stop(): Promise<void> {
    await this.events.stop();
    for (const m of Object.values(this.runMetrics)) (m as { reset(): void }).reset();
    this.metrics.runs.reset();
    this.phases.clear();
    this.countedRestarts.clear();
    this.deletedPods.clear();
  }

  // ---- steps ---------------------------------------------------------------------------------

  private async ensureFinalizer(ctx: Ctx): Promise<'next'> {
    const finalizers = ctx.run.metadata.finalizers ?? [];
    if (!finalizers.includes(FINALIZER)) {
      ctx.run = await this.deps.k8s.replaceRun({ ...ctx.run, metadata: { ...ctx.run.metadata, finalizers: [...finalizers, FINALIZER] } });
    }
    return 'next';
  }

  private validate(ctx: Ctx): 'next' | 'status' {
    ctx.check = checkRun(ctx.run, this.config);
    return ctx.check.ok ? 'next' : 'status';
  }

  private async provisionStreams(ctx: Ctx): Promise<'next'> {
    const name = ctx.run.metadata.name;
    try {
      await provisionRunStreams(this.deps.bus, name, this.deps.logger);
      await this.events.follow(ctx.run.metadata.namespace!, name, ctx.run.status);
    } catch (e) {
      // Actors are still created (they retry NATS themselves); the failure is rethrown after the status.
      ctx.busError = `NATS: ${(e as Error).message}`;
      ctx.failure = e;
    }
    return 'next';
  }

  private async observe(ctx: Ctx): Promise<'next'> {
    if (!ctx.check?.ok) return 'next';
    const { spec } = ctx.check;
    const ns = ctx.run.metadata.namespace!;
    const listed = this.cache ? this.cache.pods(ns, spec.name) : await this.deps.k8s.list('Pod', ns, selectorString({ [LABEL_RUN]: spec.name, [LABEL_MANAGED_BY]: MANAGED_BY }));
    // A pod deleted by an earlier reconcile may still be in the cache: never count or replace it twice.
    const deleted = this.deletedPods.get(ctx.key);
    if (deleted) for (const uid of deleted) if (!listed.some((p) => p.metadata?.uid === uid)) deleted.delete(uid);
    const pods = listed.filter((p) => !deleted?.has(p.metadata?.uid ?? ''));
    const prevFinal = isFinal(ctx.run.status);
    const step = Math.max(ctx.run.status?.step ?? 0, this.events.progress(ctx.key)?.step ?? 0);
    const succeeded = spec.algorithm.steps > 0 && step >= spec.algorithm.steps;
    const frozen = prevFinal || succeeded || spec.suspend;
    const now = this.deps.clock.now();
    for (const group of GROUPS) {
      const g = spec.actors[group];
      const o = observeGroup({
        group,
        pods: pods.filter((p) => p.metadata?.labels?.[LABEL_GROUP] === group),
        prev: ctx.run.status?.actors?.find((a) => a.group === group),
        desired: desiredReplicas(spec, group, frozen),
        maxRestarts: g.maxRestarts,
        gang: g.gang,
        frozen,
        policy: { baseMs: this.config.restartBaseMs, maxMs: this.config.restartMaxMs },
        now,
        random: this.deps.random ?? Math.random,
      });
      ctx.groups.push(o.status);
      if (o.replaceNow.length) ctx.replace.push({ group, pods: o.replaceNow });
      if (o.nextReplaceMs !== undefined) ctx.requeue.push(o.nextReplaceMs - now);
    }
    const exhausted = ctx.groups.some((x) => x.maxRestarts >= 0 && x.restarts > x.maxRestarts);
    ctx.scaleToZero = frozen || exhausted;
    if (ctx.scaleToZero) for (const x of ctx.groups) x.desired = 0;
    return 'next';
  }

  private async applyActors(ctx: Ctx): Promise<'next'> {
    if (!ctx.check?.ok) return 'next';
    const { spec, rendered } = ctx.check;
    const k8s = this.deps.k8s;
    const want = desiredObjects(ctx.run, spec, this.config, rendered, { scaleToZero: ctx.scaleToZero });
    await applyObject(k8s, 'ConfigMap', want.configMap);
    for (const w of want.workloads) {
      if (w.kind === 'Deployment') await applyObject(k8s, 'Deployment', w.obj);
      else await applyObject(k8s, 'StatefulSet', w.obj);
    }
    for (const s of want.services) await applyObject(k8s, 'Service', s);
    // Prune: objects of this run that the spec no longer asks for (e.g. after a rename of a group's object).
    const ns = ctx.run.metadata.namespace!;
    const selector = selectorString({ [LABEL_RUN]: spec.name, [LABEL_MANAGED_BY]: MANAGED_BY });
    const keep = new Set([...want.workloads.map((w) => `${w.kind}/${w.obj.metadata!.name}`), ...want.services.map((s) => `Service/${s.metadata!.name}`)]);
    for (const kind of ['Deployment', 'StatefulSet', 'Service'] as const) {
      const existing = this.cache && kind !== 'Service' ? this.cache.workloads(kind, ns, spec.name) : await k8s.list(kind, ns, selector);
      for (const obj of existing) {
        const name = obj.metadata?.name;
        if (!name || keep.has(`${kind}/${name}`)) continue;
        if (!obj.metadata?.ownerReferences?.some((r) => r.uid === ctx.run.metadata.uid)) continue;
        await deleteObject(k8s, kind, ns, name);
        this.deps.logger.info({ run: ctx.key, kind, name }, 'deleted an object the run no longer needs');
      }
    }
    return 'next';
  }

  private async replaceFailedPods(ctx: Ctx): Promise<'next'> {
    for (const { group, pods } of ctx.replace) {
      for (const pod of pods) {
        await this.deps.k8s.delete('Pod', pod.metadata!.namespace!, pod.metadata!.name!, { uid: pod.metadata!.uid });
        if (!this.deletedPods.has(ctx.key)) this.deletedPods.set(ctx.key, new Set());
        this.deletedPods.get(ctx.key)!.add(pod.metadata!.uid!);
      }
      const restarts = ctx.groups.find((g) => g.group === group)?.restarts ?? 0;
      const names = pods.map((p) => p.metadata!.name).join(', ');
      await recordEvent(this.deps, ctx.run, 'Warning', 'RestartingActors', `replacing ${group} pod(s) ${names} after failure (restarts ${restarts})`);
    }
    return 'next';
  }

  // ---- status ----------------------------------------------------------------------------------

  private async writeStatus(ctx: Ctx): Promise<void> {
    const run = ctx.run;
    const check = ctx.check;
    const prev = run.status;
    const progress = this.events.progress(ctx.key);
    const groups = ctx.groups.length ? ctx.groups : (prev?.actors ?? []).map((a) => ({ ...a, maxRestarts: -1 }));
    const status = computeStatus(prev, {
      generation: run.metadata.generation ?? 0,
      now: new Date(this.deps.clock.now()).toISOString(),
      spec: !check ? { ok: true } : check.ok ? { ok: true } : { ok: false, reason: check.reason, message: check.message },
      ...(ctx.busError ? { busError: ctx.busError } : {}),
      suspend: check?.ok ? check.spec.suspend : false,
      steps: check?.ok ? check.spec.algorithm.steps : 0,
      groups,
      ...(progress ? { progress } : {}),
    });
    this.recordMetrics(ctx.key, run, status.phase!, ctx.groups);
    if (JSON.stringify(status) === JSON.stringify(prev ?? {})) return;
    const updated = await this.deps.k8s.replaceRunStatus({ ...run, status });
    ctx.run = updated;
    if (prev?.phase !== status.phase) {
      const warn = status.phase === 'Failed' || status.phase === 'Invalid';
      await recordEvent(this.deps, updated, warn ? 'Warning' : 'Normal', status.phase!, status.message ?? status.phase!);
    }
  }

  private recordMetrics(key: string, run: TrainingRun, phase: Phase, groups: ObservedGroup[]): void {
    const base = { namespace: run.metadata.namespace!, run: run.metadata.name };
    for (const p of PHASES) this.runMetrics.phase.set({ ...base, phase: p }, p === phase ? 1 : 0);
    for (const g of groups) {
      const labels = { ...base, group: g.group };
      this.runMetrics.actorsReady.set(labels, g.ready);
      this.runMetrics.actorsDesired.set(labels, g.desired);
      const seen = this.countedRestarts.get(`${key}/${g.group}`);
      // The counter starts from the restarts already recorded in the status (a controller restart is not a failure).
      const prevRecorded = run.status?.actors?.find((a) => a.group === g.group)?.restarts ?? 0;
      const from = seen ?? prevRecorded;
      if (seen === undefined) this.runMetrics.actorRestarts.inc(labels, prevRecorded);
      if (g.restarts > from) this.runMetrics.actorRestarts.inc(labels, g.restarts - from);
      this.countedRestarts.set(`${key}/${g.group}`, Math.max(from, g.restarts));
    }
    this.phases.set(key, phase);
    this.updatePhaseCounts();
  }

  private updatePhaseCounts(): void {
    const counts = new Map<Phase, number>(PHASES.map((p) => [p, 0]));
    for (const p of this.phases.values()) counts.set(p, (counts.get(p) ?? 0) + 1);
    for (const [phase, n] of counts) this.metrics.runs.set({ phase }, n);
  }

  // ---- deletion --------------------------------------------------------------------------------

  private async finalize(key: string, run: TrainingRun): Promise<ReconcileOutcome> {
    const finalizers = run.metadata.finalizers ?? [];
    if (!finalizers.includes(FINALIZER)) return { requeueAfterMs: undefined };
    await this.events.forget(key);
    const deleted = await deleteRunStreams(this.deps.bus, run.metadata.name);
    this.deps.logger.info({ run: key, streams: deleted }, 'deleted the run\'s NATS streams');
    await this.deps.k8s.replaceRun({ ...run, metadata: { ...run.metadata, finalizers: finalizers.filter((f) => f !== FINALIZER) } });
    await this.forget(key);
    return { requeueAfterMs: undefined };
  }

  private async forget(key: string): Promise<void> {
    await this.events.forget(key);
    const { namespace, name } = parseRunKey(key);
    forgetRun(this.runMetrics, namespace, name);
    for (const g of GROUPS) this.countedRestarts.delete(`${key}/${g}`);
    this.deletedPods.delete(key);
    if (this.phases.delete(key)) this.updatePhaseCounts();
  }
}
