// The run's NATS side: creates its streams (core's runStreamConfigs, the configs every component
// uses, so whoever comes first creates them) and KV buckets, and deletes all of it with the run.

import { BusError, type Bus, type StreamConfig } from '../core/bus/index.js';
import type { Logger } from '../core/logger.js';
import { runStreamConfigs as coreStreamConfigs, runSubjects } from '../core/run-subjects.js';

/** The run's streams: tasks and trajectories (work queues) and events (kept 7 days). Throws for a bad run name. */
export function runStreamConfigs(run: string): StreamConfig[] {
  return Object.values(coreStreamConfigs(run));
}

/**
 * Creates (or updates) the run's streams and KV buckets. A stream another component already created
 * under a different name for the same subjects is accepted with a warning. Rejects with BusError
 * ('unavailable' when NATS cannot be reached, 'invalid' for a bad configuration).
 */
export async function provisionRunStreams(bus: Bus, run: string, logger: Logger): Promise<void> {
  for (const config of runStreamConfigs(run)) {
    try {
      await bus.ensureStream(config);
    } catch (e) {
      if (!BusError.is(e, 'conflict')) throw e;
      logger.warn({ run, stream: config.name, err: (e as Error).message }, 'another stream already captures these subjects; using it');
    }
  }
  const s = runSubjects(run);
  await bus.kv(s.registryBucket, { ttlMs: 60_000 });
  await bus.kv(s.stateBucket, { history: 5 });
}

/** Every stream that may hold the run's data: its streams and those behind its KV buckets and object store (KV_<bucket>, OBJ_<bucket> in JetStream). */
export function runStreamNames(run: string): string[] {
  const s = runSubjects(run);
  return [...runStreamConfigs(run).map((c) => c.name), `KV_${s.registryBucket}`, `KV_${s.stateBucket}`, `OBJ_${s.weightsBucket}`];
}

/** Deletes every stream of the run; resolves the names that existed. Rejects with BusError when NATS fails. */
export async function deleteRunStreams(bus: Bus, run: string): Promise<string[]> {
  const deleted: string[] = [];
  for (const name of runStreamNames(run)) if (await bus.deleteStream(name)) deleted.push(name);
  return deleted;
}
