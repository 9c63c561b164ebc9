// Input checks and subject matching shared by both bus implementations, so that a bad name,
// subject, key or option fails the same way ('invalid') whichever implementation runs.

import { BusError } from './errors.js';
import type { ConsumerConfig, Headers, StreamConfig } from './types.js';

/** Reply headers that carry a handler's failure (the NATS micro-services convention). */
export const HANDLER_ERROR_HEADER = 'Nats-Service-Error';
export const HANDLER_ERROR_CODE_HEADER = 'Nats-Service-Error-Code';
/** JetStream's deduplication header; the in-process bus writes it too. */
export const MSG_ID_HEADER = 'Nats-Msg-Id';

const NAME = /^[A-Za-z0-9_-]+$/;
const KV_KEY = /^[-/=.A-Za-z0-9_]+$/;
const HEADER_KEY = /^[!-9;-~]+$/; // printable ASCII without ':' or spaces
const MIN_EXPIRES_MS = 1_000;

function invalid(message: string): never {
  throw new BusError('invalid', message);
}

/** Stream, durable and bucket names: letters, digits, '-' and '_'. */
export function checkName(kind: string, name: string): void {
  if (typeof name !== 'string' || !NAME.test(name)) {
    invalid(`${kind} name ${JSON.stringify(name)} is invalid: use letters, digits, '-' and '_'`);
  }
}

function tokens(subject: string): string[] {
  return subject.split('.');
}

/** A subject or pattern: dot-separated non-empty tokens without spaces; wildcards only if allowed. */
export function checkSubject(subject: string, allowWildcards: boolean): void {
  const what = allowWildcards ? 'subject pattern' : 'subject';
  if (typeof subject !== 'string' || subject.length === 0) invalid(`${what} must be a non-empty string`);
  const parts = tokens(subject);
  parts.forEach((t, i) => {
    if (t.length === 0 || /\s/.test(t)) {
      invalid(`${what} ${JSON.stringify(subject)} is invalid: tokens are non-empty and have no spaces`);
    }
    const wild = t === '*' || t === '>';
    if (wild && !allowWildcards) invalid(`subject ${JSON.stringify(subject)} must not contain wildcards`);
    if (t === '>' && i !== parts.length - 1) invalid(`'>' must be the last token in ${JSON.stringify(subject)}`);
    if (!wild && (t.includes('*') || t.includes('>'))) {
      invalid(`${what} ${JSON.stringify(subject)} is invalid: '*' and '>' must be whole tokens`);
    }
  });
}

/** True when the literal subject matches the pattern. */
export function subjectMatches(pattern: string, subject: string): boolean {
  const p = tokens(pattern);
  const s = tokens(subject);
  for (let i = 0; i < p.length; i++) {
    const t = p[i];
    if (t === '>') return s.length > i;
    if (i >= s.length) return false;
    if (t !== '*' && t !== s[i]) return false;
  }
  return p.length === s.length;
}

/** True when some subject matches both patterns. */
export function subjectsOverlap(a: string, b: string): boolean {
  const x = tokens(a);
  const y = tokens(b);
  for (let i = 0; ; i++) {
    const s = x[i];
    const t = y[i];
    if (s === undefined || t === undefined) return s === undefined && t === undefined;
    if (s === '>' || t === '>') return true;
    if (s !== '*' && t !== '*' && s !== t) return false;
  }
}

export function checkKvKey(key: string, allowWildcards = false): void {
  const ok =
    typeof key === 'string' &&
    key.length > 0 &&
    !key.startsWith('.') &&
    !key.endsWith('.') &&
    tokens(key).every((t) => KV_KEY.test(t) || (allowWildcards && (t === '*' || t === '>')));
  if (!ok) {
    invalid(`KV key ${JSON.stringify(key)} is invalid: use letters, digits and '-/_=.', not starting or ending with '.'`);
  }
  if (allowWildcards) checkSubject(key, true);
}

export function checkObjectName(name: string): void {
  if (typeof name !== 'string' || name.length === 0) invalid('object name must be a non-empty string');
}

export function checkHeaders(headers: Headers | undefined): void {
  for (const [k, v] of Object.entries(headers ?? {})) {
    if (!HEADER_KEY.test(k)) invalid(`header name ${JSON.stringify(k)} is invalid: printable ASCII without ':' or spaces`);
    if (typeof v !== 'string' || /[\r\n]/.test(v)) invalid(`header ${k} must be a string without line breaks`);
  }
}

function checkPositive(field: string, v: unknown, integer = false): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || (integer && !Number.isInteger(v))) {
    invalid(`${field} must be a positive ${integer ? 'integer' : 'number'}, got ${String(v)}`);
  }
}

export function checkStreamConfig(c: StreamConfig): void {
  checkName('stream', c.name);
  if (!Array.isArray(c.subjects) || c.subjects.length === 0) invalid(`stream ${c.name}: subjects must be a non-empty list`);
  for (const s of c.subjects) checkSubject(s, true);
  if (c.retention !== 'workqueue' && c.retention !== 'limits') {
    invalid(`stream ${c.name}: retention must be 'workqueue' or 'limits', got ${String(c.retention)}`);
  }
  checkPositive('duplicateWindowMs', c.duplicateWindowMs);
  if (c.maxAgeMs !== undefined) {
    checkPositive('maxAgeMs', c.maxAgeMs);
    if (c.duplicateWindowMs > c.maxAgeMs) invalid(`stream ${c.name}: duplicateWindowMs must not exceed maxAgeMs`);
  }
  if (c.maxBytes !== undefined) checkPositive('maxBytes', c.maxBytes, true);
}

export function checkConsumerConfig(c: ConsumerConfig): void {
  checkName('stream', c.stream);
  checkName('durable', c.durable);
  if (c.filterSubject !== undefined) checkSubject(c.filterSubject, true);
  checkPositive('ackWaitMs', c.ackWaitMs);
  checkPositive('maxDeliver', c.maxDeliver, true);
  checkPositive('maxAckPending', c.maxAckPending, true);
}

export function checkTimeout(field: string, ms: number): void {
  checkPositive(field, ms);
}

/** The pull expiry both implementations use (see NextOptions.expiresMs). */
export function pullExpiry(expiresMs: number | undefined): number {
  if (expiresMs === undefined) return 30_000;
  checkPositive('expiresMs', expiresMs);
  return Math.max(MIN_EXPIRES_MS, expiresMs);
}

/** consume()'s batch: a positive integer, default 1. */
export function checkBatch(batch: number | undefined): number {
  if (batch === undefined) return 1;
  checkPositive('batch', batch, true);
  return batch;
}

/** Padded base64url SHA-256 digest in the object store's format. */
export function formatDigest(sha256: Buffer): string {
  return `SHA-256=${sha256.toString('base64').replace(/\+/g, '-').replace(/\//g, '_')}`;
}
