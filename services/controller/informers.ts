// Informers feeding the work queue: TrainingRuns, and the Deployments, StatefulSets and Pods the
// controller manages (by label), each mapped to its run's key; restarted with backoff after errors.

import type { KubernetesObject, V1Pod } from '@kubernetes/client-node';
import type { Logger } from '../core/logger.js';
import type { Clock, TimerHandle } from './clock.js';
import type { KubeClient, KubeInformer, WatchedKind } from './kube-client.js';
import { LABEL_MANAGED_BY, LABEL_RUN, MANAGED_BY, runKeyOfObject } from './labels.js';
import type { ControllerMetrics } from './metrics.js';

/** What the reconciler reads from the informers' caches instead of listing through the API server. */
export interface RunCache {
  /** The run's pods as last seen (may lag the API server by a watch event). */
  pods(namespace: string, run: string): V1Pod[];
  /** The run's Deployments or StatefulSets as last seen. */
  workloads(kind: 'Deployment' | 'StatefulSet', namespace: string, run: string): KubernetesObject[];
}

interface Entry {
  kind: WatchedKind;
  informer: KubeInformer<KubernetesObject>;
  failures: number;
  timer?: TimerHandle;
}

export class RunInformers implements RunCache {
  private entries: Entry[] = [];
  private state: 'idle' | 'running' | 'stopped' = 'idle';

  constructor(
    private readonly deps: { k8s: KubeClient; logger: Logger; clock: Clock; metrics: ControllerMetrics; random?: () => number },
    private readonly opts: { namespace?: string },
    private readonly enqueue: (key: string) => void,
  ) {}

  /** Lists and starts watching every kind. Safe to call twice; never rejects (failed lists are retried with backoff). */
  async start(): Promise<void> {
    if (this.state !== 'idle') return;
    this.state = 'running';
    const namespace = this.opts.namespace || undefined;
    const managed = `${LABEL_MANAGED_BY}=${MANAGED_BY}`;
    const kinds: [WatchedKind, string | undefined][] = [
      ['TrainingRun', undefined],
      ['Deployment', managed],
      ['StatefulSet', managed],
      ['Pod', managed],
    ];
    for (const [kind, labelSelector] of kinds) {
      const informer = this.deps.k8s.informer<KubernetesObject>(kind, { namespace, labelSelector });
      const entry: Entry = { kind, informer, failures: 0 };
      this.deps.metrics.watchRestarts.inc({ kind }, 0);
      const toKey = (obj: KubernetesObject) => {
        entry.failures = 0;
        const key = kind === 'TrainingRun' ? `${obj.metadata?.namespace}/${obj.metadata?.name}` : runKeyOfObject(obj);
        if (key && this.state === 'running') this.enqueue(key);
      };
      informer.on('add', toKey);
      informer.on('update', toKey);
      informer.on('delete', toKey);
      informer.on('error', (err) => this.restartLater(entry, err));
      this.entries.push(entry);
    }
    await Promise.all(this.entries.map((e) => e.informer.start()));
  }

  pods(namespace: string, run: string): V1Pod[] {
    return this.cached('Pod', namespace, run) as V1Pod[];
  }

  workloads(kind: 'Deployment' | 'StatefulSet', namespace: string, run: string): KubernetesObject[] {
    return this.cached(kind, namespace, run);
  }

  private cached(kind: WatchedKind, namespace: string, run: string): KubernetesObject[] {
    const informer = this.entries.find((e) => e.kind === kind)?.informer;
    return (informer?.list(namespace) ?? []).filter((o) => o.metadata?.labels?.[LABEL_RUN] === run);
  }

  /** Runs in the TrainingRun cache (after start). */
  runKeys(): string[] {
    const runs = this.entries.find((e) => e.kind === 'TrainingRun')?.informer.list() ?? [];
    return runs.map((r) => `${r.metadata?.namespace}/${r.metadata?.name}`);
  }

  /** Stops every watch and pending restart. Safe to call twice. */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    for (const e of this.entries) {
      if (e.timer) this.deps.clock.clearTimeout(e.timer);
      await e.informer.stop();
    }
  }

  /** A list or watch failed and the informer stopped: start it again after a jittered exponential backoff. */
  private restartLater(entry: Entry, err: unknown): void {
    if (this.state !== 'running' || entry.timer) return;
    entry.failures++;
    const cap = Math.min(30_000, 500 * 2 ** Math.min(entry.failures - 1, 10));
    const delay = Math.round(cap / 2 + ((this.deps.random ?? Math.random)() * cap) / 2);
    this.deps.metrics.watchRestarts.inc({ kind: entry.kind });
    this.deps.logger.warn({ kind: entry.kind, err: err instanceof Error ? err.message : String(err), retryInMs: delay }, 'watch failed; restarting');
    entry.timer = this.deps.clock.setTimeout(() => {
      entry.timer = undefined;
      if (this.state === 'running') void entry.informer.start();
    }, delay);
  }
}
