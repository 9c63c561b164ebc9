// Per-session sandbox state with limits: sessions per server, idle TTL, tool calls and state bytes per session.
// Closed and expired sessions leave a bounded tombstone so late calls get a precise NOT_FOUND.

import { randomUUID } from 'node:crypto';
import { ParleyError } from '../core/errors.js';
import type { Tau2Task } from './domain.js';
import { echo } from './echo.js';
import type { Environment } from './environment.js';

export interface SessionLimits {
  /**
   * Per server, not per client: the Sandbox has no notion of client (no authentication, and a NATS
   * request carries no caller identity), so a per-client quota waits for an authenticated caller.
   */
  maxSessions: number;
  idleTtlMs: number;
  maxCallsPerSession: number;
  maxStateBytes: number;
}

export interface Session {
  id: string;
  domain: string;
  task: Tau2Task | undefined;
  env: Environment;
  calls: number;
  /** Bytes of argument strings its WRITE tool calls stored (a fork starts from its parent's count). */
  stateBytes: number;
  lastUsed: number;
  /**
   * A group's base, opened only to be forked: at the session limit the least recently used one is
   * closed to make room (a sample that still needs it opens it again, identically, by its id).
   */
  evictable?: boolean;
}

const SESSION_ID = /^[A-Za-z0-9._:@/-]{1,128}$/;
const TOMBSTONES = 10_000;

type GoneReason = 'closed' | 'expired' | 'evicted';
/** What a call on a session that is gone is told, by why it went. */
const GONE: Record<GoneReason, (idleTtlMs: number) => string> = {
  closed: () => 'was closed',
  expired: (ttl) => `expired after ${ttl} ms idle`,
  evicted: () => 'was a group base closed to make room at the session limit (open it again)',
};

export class SessionStore {
  private readonly sessions = new Map<string, Session>();
  private readonly gone = new Map<string, GoneReason>();
  private sweeper: NodeJS.Timeout | undefined;

  constructor(
    private readonly limits: SessionLimits,
    private readonly now: () => number = Date.now,
  ) {
    const every = Math.max(100, Math.min(limits.idleTtlMs / 4, 30_000));
    this.sweeper = setInterval(() => this.sweep(), every);
    this.sweeper.unref();
  }

  get size(): number {
    return this.sessions.size;
  }

  /** Checks a client-chosen id; throws invalid_argument naming the accepted form. */
  static checkId(id: string, field = 'session_id'): void {
    if (!SESSION_ID.test(id)) {
      throw new ParleyError('invalid_argument', `${field}: '${echo(id)}' is not a valid session id (1-128 of A-Z a-z 0-9 . _ : @ / -)`, { field });
    }
  }

  /**
   * Adds a session. At the session limit the least recently used evictable session (a group base) makes
   * room; with none, throws resource_exhausted. Throws already_exists on a live duplicate id.
   */
  add(domain: string, task: Tau2Task | undefined, env: Environment, id?: string, opts: { evictable?: boolean; stateBytes?: number } = {}): Session {
    this.sweep();
    const sid = id || randomUUID();
    if (this.sessions.has(sid)) throw new ParleyError('already_exists', `session_id: session '${echo(sid)}' already exists`, { field: 'session_id' });
    if (this.sessions.size >= this.limits.maxSessions && !this.evictOne()) {
      throw new ParleyError('resource_exhausted', `too many open sessions: the limit is ${this.limits.maxSessions}; close sessions or raise maxSessions`);
    }
    const s: Session = { id: sid, domain, task, env, calls: 0, stateBytes: opts.stateBytes ?? 0, lastUsed: this.now(), ...(opts.evictable ? { evictable: true } : {}) };
    this.sessions.set(sid, s);
    this.gone.delete(sid);
    return s;
  }

  /** Returns a live session and marks it used. Throws invalid_argument (empty id) or not_found (unknown, closed, expired). */
  get(id: string): Session {
    if (!id) throw new ParleyError('invalid_argument', 'session_id: required', { field: 'session_id' });
    const s = this.sessions.get(id);
    if (s && this.now() - s.lastUsed > this.limits.idleTtlMs) {
      this.retire(id, 'expired');
    } else if (s) {
      s.lastUsed = this.now();
      return s;
    }
    const why = this.gone.get(id);
    const detail = why ? GONE[why](this.limits.idleTtlMs) : 'does not exist';
    throw new ParleyError('not_found', `session '${echo(id)}' ${detail}`, { field: 'session_id' });
  }

  /** Counts a tool call; throws resource_exhausted past maxCallsPerSession. */
  countCall(s: Session): void {
    if (s.calls >= this.limits.maxCallsPerSession) {
      throw new ParleyError('resource_exhausted', `session '${echo(s.id)}' reached the limit of ${this.limits.maxCallsPerSession} tool calls`);
    }
    s.calls++;
  }

  /** Throws resource_exhausted, naming the budget, when storing `bytes` more would pass maxStateBytes. */
  checkStateGrowth(s: Session, bytes: number): void {
    if (s.stateBytes + bytes > this.limits.maxStateBytes) {
      throw new ParleyError(
        'resource_exhausted',
        `session '${echo(s.id)}' would store ${s.stateBytes + bytes} bytes of argument strings, past its state budget of ${this.limits.maxStateBytes} bytes (maxSessionStateBytes)`,
      );
    }
  }

  /** Counts `bytes` a WRITE tool call stored. */
  addStateBytes(s: Session, bytes: number): void {
    s.stateBytes += bytes;
  }

  /** Closes a session; throws not_found when it is not live. */
  close(id: string): Session {
    const s = this.get(id);
    this.retire(id, 'closed');
    return s;
  }

  /** Closes the least recently used evictable session; false when there is none. */
  private evictOne(): boolean {
    let victim: Session | undefined;
    for (const s of this.sessions.values()) if (s.evictable && (!victim || s.lastUsed < victim.lastUsed)) victim = s;
    if (victim) this.retire(victim.id, 'evicted');
    return victim !== undefined;
  }

  private retire(id: string, why: GoneReason): void {
    this.sessions.delete(id);
    this.gone.set(id, why);
    if (this.gone.size > TOMBSTONES) this.gone.delete(this.gone.keys().next().value as string);
  }

  /** Expires idle sessions. */
  sweep(): number {
    const t = this.now();
    let n = 0;
    for (const [id, s] of this.sessions) {
      if (t - s.lastUsed > this.limits.idleTtlMs) {
        this.retire(id, 'expired');
        n++;
      }
    }
    return n;
  }

  stop(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = undefined;
  }
}
