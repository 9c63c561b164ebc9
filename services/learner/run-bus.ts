// The learner's side of the run's bus: subject and stream names, the durable trajectory consumer,
// and publication of weights (shared directory or object store) and events.

import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { BusError, type Bus, type Consumer, type StreamConfig } from '../core/bus/index.js';
import { ParleyError } from '../core/errors.js';
import { runStreamConfigs } from '../core/run-subjects.js';

export type { WeightsLoadedEvent, WeightsPublishedEvent } from '../core/weights-events.js';
import { UPLOAD_COMPLETE } from '../core/weights-events.js';

/** Subjects of a run (DESIGN §3). */
export function runSubjects(run: string) {
  return {
    trajectories: `parley.${run}.trajectories`,
    events: `parley.${run}.events.>`,
    weightsPublished: `parley.${run}.events.weights_published`,
    weightsLoaded: `parley.${run}.events.weights_loaded`,
    stepCompleted: `parley.${run}.events.step_completed`,
    coldStartCompleted: `parley.${run}.events.cold_start_completed`,
    deadLetters: `parley.${run}.dead_letters`,
  };
}

/** Stream names of a run (core's naming, shared with the rollout side and the controller). */
export function runStreams(run: string) {
  const c = runStreamConfigs(run);
  return { trajectories: c.trajectories.name, events: c.events.name, deadLetters: c.deadLetters.name };
}

/** The durable name the learner consumes trajectories under (one learner per run). */
export const LEARNER_DURABLE = 'learner';

/** The trajectory stream the learner creates when absent: a work queue (an acked trajectory is gone). */
export function trajectoryStreamConfig(run: string): StreamConfig {
  // A dedup window longer than any rollout retry; duplicates beyond it are caught by the learner's id set.
  return runStreamConfigs(run).trajectories;
}

async function ensureIfAbsent(bus: Bus, config: StreamConfig): Promise<void> {
  try {
    await bus.streamInfo(config.name);
    return;
  } catch (e) {
    if (!BusError.is(e, 'not_found')) throw e;
  }
  await bus.ensureStream(config);
}

/**
 * Creates the run's trajectory stream (work queue: an acked trajectory is gone), event stream and
 * dead-letter stream when absent, leaving existing ones as their creator configured them, and binds the learner's durable
 * consumer. Rejects with BusError: 'conflict' when another stream already captures these subjects
 * under a different name, 'unavailable' when the server cannot be reached.
 */
export async function openRunStreams(bus: Bus, run: string, opts: { ackWaitMs: number; maxAckPending: number }): Promise<Consumer> {
  const s = runSubjects(run);
  const names = runStreams(run);
  await ensureIfAbsent(bus, trajectoryStreamConfig(run));
  try {
    await ensureIfAbsent(bus, runStreamConfigs(run).events);
  } catch (e) {
    // Another component (the controller) may own an events stream under its own name.
    if (!BusError.is(e, 'conflict')) throw e;
  }
  await ensureIfAbsent(bus, runStreamConfigs(run).deadLetters);
  return bus.consumer({
    stream: names.trajectories,
    durable: LEARNER_DURABLE,
    filterSubject: s.trajectories,
    ackWaitMs: opts.ackWaitMs,
    // A trajectory must never exhaust its deliveries (that would lose it): only acks end it.
    maxDeliver: 1_000_000,
    maxAckPending: opts.maxAckPending,
  });
}

/** The step_completed event (JSON). */
export interface StepCompletedEvent {
  run: string;
  step: number;
  policyVersion: number;
  trajectories: number;
  rewardMean: number;
  seconds: number;
  /** ScalingInter-RL turn horizon for rollouts from now on (0: no schedule), and its stage. */
  horizon: number;
  horizonStage: number;
  metrics: Record<string, number>;
  /** Tokens trained in the step (the sequences' lengths). */
  tokens?: number;
  /** The run's totals after the step (consumed, trained, droppedStale, zeroVarianceGroups, incompleteGroups). */
  totals?: Record<string, number>;
}

/** The learner's entry in the run-state KV bucket (`parley-<run>-state`, key `learner`). */
export interface LearnerRunState {
  step: number;
  policyVersion: number;
  horizon: number;
  horizonStage: number;
  updatedAt: string;
}

/** The run-state KV bucket of a run (DESIGN §3: step, policy version, horizon stage). */
export const runStateBucket = (run: string) => `parley-${run}-state`;

/** Publishes an event with a dedup id, so a re-publish after a restart is stored once. Rejects with BusError. */
export async function publishEvent(bus: Bus, subject: string, msgId: string, event: object): Promise<void> {
  await bus.publish(subject, new TextEncoder().encode(JSON.stringify(event)), { msgId, headers: { 'content-type': 'application/json' } });
}

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await listFiles(p)));
    else if (entry.isFile()) out.push(p);
  }
  return out;
}

/**
 * Makes the weights folder reachable by policy actors and returns its URI: the absolute path for
 * `directory`; for `object_store`, every file uploaded to bucket `parley-<run>-weights` under
 * `v<version>/` (immutable names, never reused), unless the folder is over `maxBytes`, which then
 * goes by directory. Rejects with the file-system error or BusError.
 */
export async function publishWeightsArtifact(
  bus: Bus,
  run: string,
  folder: string,
  version: number,
  opts: { transport: 'directory' | 'object_store'; maxBytes: number },
): Promise<{ uri: string; transport: 'directory' | 'object_store'; bytes: number }> {
  const abs = resolve(folder);
  const files = await listFiles(abs);
  let bytes = 0;
  for (const f of files) bytes += (await stat(f)).size;
  if (opts.transport === 'directory' || bytes > opts.maxBytes) return { uri: abs, transport: 'directory', bytes };
  const bucket = `parley-${run}-weights`;
  const store = await bus.objects(bucket);
  const prefix = `v${String(version).padStart(8, '0')}`;
  const uri = `nats-object://${bucket}/${prefix}/`;
  // Versions are immutable: once an upload completed (its marker, written last, is there), a re-announce
  // after a restart must not upload again — replacing objects a policy replica is downloading would
  // hand it a partial folder.
  const marker = `${prefix}/${UPLOAD_COMPLETE}`;
  if (await store.info(marker)) return { uri, transport: 'object_store', bytes };
  for (const f of files) {
    await store.put(`${prefix}/${relative(abs, f)}`, await readFile(f), { description: `weights version ${version}` });
  }
  await store.put(marker, new TextEncoder().encode(JSON.stringify({ version, files: files.length, bytes })), { description: `weights version ${version} complete` });
  return { uri, transport: 'object_store', bytes };
}

/** Throws ParleyError(invalid_argument) when a decoded event is not JSON of the expected shape (for consumers and tests). */
export function parseEvent<T>(data: Uint8Array): T {
  try {
    return JSON.parse(new TextDecoder().decode(data)) as T;
  } catch (e) {
    throw new ParleyError('invalid_argument', 'event payload is not JSON', { cause: e });
  }
}
