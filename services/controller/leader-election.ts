// Leader election over a coordination.k8s.io Lease (client-go's algorithm): acquire when the holder's
// record has not changed for a lease duration, renew every retry period, step down after the renew deadline.

import type { V1Lease, V1LeaseSpec } from '@kubernetes/client-node';
import type { Logger } from '../core/logger.js';
import type { Clock, TimerHandle } from './clock.js';
import { KubeApiError, type KubeClient } from './kube-client.js';

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}

export interface LeaderCallbacks {
  onStartedLeading(): void | Promise<void>;
  onStoppedLeading(): void | Promise<void>;
}

export type ElectorState = 'idle' | 'candidate' | 'leading' | 'stopped';

/** client-node types MicroTime as Date but sends strings unchanged; the API server wants microseconds. */
const asSpec = (spec: Record<string, unknown>): V1LeaseSpec => spec as unknown as V1LeaseSpec;

/** Lease times are MicroTime: RFC 3339 with microseconds. */
function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export class LeaderElector {
  private state: ElectorState = 'idle';
  private timer: TimerHandle | undefined;
  private observed: { record: string; at: number } | undefined;
  private lastRenew = 0;
  private busy: Promise<void> = Promise.resolve();

  constructor(
    private readonly opts: LeaderElectionOptions,
    private readonly deps: { k8s: KubeClient; clock: Clock; logger: Logger },
    private readonly callbacks: LeaderCallbacks,
  ) {}

  get currentState(): ElectorState {
    return this.state;
  }

  /** Starts competing for the Lease. Safe to call twice. */
  start(): void {
    if (this.state !== 'idle') return;
    this.state = 'candidate';
    this.schedule(0);
  }

  /** Stops; a leader releases the Lease so another replica takes over at once. Safe to call twice. */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    const wasLeading = this.state === 'leading';
    this.state = 'stopped';
    if (this.timer) this.deps.clock.clearTimeout(this.timer);
    await this.busy;
    if (wasLeading) {
      await this.release();
      await this.callbacks.onStoppedLeading();
    }
  }

  private schedule(ms: number): void {
    this.timer = this.deps.clock.setTimeout(() => {
      this.busy = this.tick().catch((e: unknown) => this.deps.logger.error({ err: e }, 'leader election tick failed'));
    }, ms);
  }

  private async tick(): Promise<void> {
    if (this.state === 'stopped') return;
    const ok = await this.tryAcquireOrRenew();
    // The state may have changed while the call was in flight.
    if ((this.state as ElectorState) === 'stopped') return;
    const now = this.deps.clock.now();
    if (ok) {
      this.lastRenew = now;
      if (this.state === 'candidate') {
        this.state = 'leading';
        this.deps.logger.info({ lease: this.opts.name, identity: this.opts.identity }, 'became the leader');
        await this.callbacks.onStartedLeading();
      }
    } else if (this.state === 'leading' && now - this.lastRenew >= this.opts.renewDeadlineMs) {
      this.state = 'candidate';
      this.deps.logger.warn({ lease: this.opts.name }, 'could not renew the lease within the renew deadline; stepping down');
      await this.callbacks.onStoppedLeading();
    }
    if ((this.state as ElectorState) !== 'stopped') this.schedule(this.opts.retryPeriodMs);
  }

  /** True when this replica holds the Lease after the attempt. Never throws (API errors count as a failed attempt). */
  private async tryAcquireOrRenew(): Promise<boolean> {
    const { namespace, name, identity } = this.opts;
    const now = this.deps.clock.now();
    const k8s = this.deps.k8s;
    try {
      const lease = await k8s.get('Lease', namespace, name);
      const spec = { holderIdentity: identity, leaseDurationSeconds: Math.ceil(this.opts.leaseDurationMs / 1000), renewTime: microTime(now) };
      if (!lease) {
        const fresh: V1Lease = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace }, spec: asSpec({ ...spec, acquireTime: microTime(now), leaseTransitions: 0 }) };
        await k8s.create('Lease', fresh);
        return true;
      }
      const cur = lease.spec ?? {};
      const record = JSON.stringify([cur.holderIdentity, String(cur.renewTime), cur.leaseDurationSeconds]);
      if (this.observed?.record !== record) this.observed = { record, at: now };
      const holder = cur.holderIdentity;
      const durationMs = (cur.leaseDurationSeconds ?? 0) * 1000;
      // Another holder's record must stay unchanged for a whole lease duration (by our clock) before we take over.
      if (holder && holder !== identity && this.observed.at + durationMs > now) return false;
      const takeover = holder !== identity;
      const next: V1Lease = {
        ...lease,
        spec: asSpec({
          ...cur,
          ...spec,
          acquireTime: takeover || !cur.acquireTime ? microTime(now) : microTime(new Date(cur.acquireTime).getTime()),
          leaseTransitions: (cur.leaseTransitions ?? 0) + (takeover && holder ? 1 : 0),
        }),
      };
      await k8s.replace('Lease', next);
      return true;
    } catch (e) {
      if (!KubeApiError.is(e, 409)) this.deps.logger.warn({ err: (e as Error).message }, 'lease update failed');
      return false;
    }
  }

  private async release(): Promise<void> {
    const { namespace, name, identity } = this.opts;
    try {
      const lease = await this.deps.k8s.get('Lease', namespace, name);
      if (!lease || lease.spec?.holderIdentity !== identity) return;
      const now = microTime(this.deps.clock.now());
      await this.deps.k8s.replace('Lease', { ...lease, spec: asSpec({ ...lease.spec, acquireTime: undefined, holderIdentity: '', leaseDurationSeconds: 1, renewTime: now }) });
    } catch (e) {
      this.deps.logger.warn({ err: (e as Error).message }, 'could not release the lease');
    }
  }
}
