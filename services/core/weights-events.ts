// The weight-sync events of a run (DESIGN §4): the learner's weights_published and each policy
// replica's weights_loaded, with their dedup ids and a checked decoder for the published one.

import type { Bus } from './bus/index.js';
import { ParleyError, invalidArgument } from './errors.js';
import { sleep } from './retry.js';
import { runSubjects } from './run-subjects.js';

/** parley.<run>.events.weights_published: the learner committed a step and its weights are reachable. */
export interface WeightsPublishedEvent {
  run: string;
  /** The policy version: 0 for the weights the learner starts from, then one more per update; never reused. */
  version: number;
  step: number;
  /** directory: an absolute path on the shared volume; object_store: nats-object://<bucket>/<prefix>/ */
  uri: string;
  /**
   * full: the engine's SaveWeights folder of the whole trainable model; lora: the same folder of a
   * LoRA run, whose export/ sub-folder is the PEFT adapter (adapter_config.json and weights) a LoRA
   * server such as vLLM loads.
   */
  kind: 'full' | 'lora';
  transport: 'directory' | 'object_store';
  bytes: number;
  /** The learner's wall clock when it published (ms since the epoch), for weight-sync latency. */
  publishedAtMs: number;
  /**
   * Version 0 only: true when the learner did not start from the engine's fresh Init (a cold start or
   * initialWeights), so replicas, which start from a fresh Init, must load version 0 too.
   */
  replacesInit?: boolean;
}

/** parley.<run>.events.weights_loaded: one policy replica serves `version` from now on. */
export interface WeightsLoadedEvent {
  run: string;
  /** The replica's name (its pod name in a cluster). */
  replica: string;
  version: number;
  /** Seconds the replica took to fetch and load the weights. */
  seconds: number;
  /** The replica's wall clock when the load finished (ms since the epoch). */
  loadedAtMs: number;
}

/** Dedup id of weights_published: one per version, however often the learner announces it. */
/** The object the learner writes after a version's files in the object store: the upload is complete. */
export const UPLOAD_COMPLETE = '.upload-complete';

export const weightsPublishedMsgId = (run: string, version: number): string => `${run}/weights/${version}`;

/** Dedup id of weights_loaded: one per replica and version, however often a redelivery reports it. */
export const weightsLoadedMsgId = (run: string, replica: string, version: number): string => `${run}/weights_loaded/${replica}/${version}`;

const nonNegativeInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/**
 * Decodes and checks a weights_published payload. Throws ParleyError(invalid_argument) naming the
 * first bad field, or when the payload is not a JSON object. publishedAtMs defaults to 0 (unknown)
 * for events from learners that did not send it.
 */
export function parseWeightsPublished(data: Uint8Array): WeightsPublishedEvent {
  let e: Record<string, unknown>;
  try {
    e = JSON.parse(new TextDecoder().decode(data)) as Record<string, unknown>;
  } catch (err) {
    throw new ParleyError('invalid_argument', 'weights_published: the payload is not JSON', { cause: err });
  }
  if (!e || typeof e !== 'object' || Array.isArray(e)) throw invalidArgument('weights_published', 'the payload must be a JSON object');
  if (typeof e.run !== 'string' || e.run === '') throw invalidArgument('weights_published.run', 'required: the run name');
  if (!nonNegativeInt(e.version)) throw invalidArgument('weights_published.version', `must be an integer >= 0, got ${JSON.stringify(e.version)}`);
  if (typeof e.uri !== 'string' || (e.uri.trim() === '' && e.version > 0)) throw invalidArgument('weights_published.uri', 'required: a directory path or nats-object:// URI');
  if (e.kind !== 'full' && e.kind !== 'lora') throw invalidArgument('weights_published.kind', `must be full or lora, got ${JSON.stringify(e.kind)}`);
  if (e.transport !== 'directory' && e.transport !== 'object_store') {
    throw invalidArgument('weights_published.transport', `must be directory or object_store, got ${JSON.stringify(e.transport)}`);
  }
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
  return {
    run: e.run,
    version: e.version,
    step: num(e.step),
    uri: e.uri,
    kind: e.kind,
    transport: e.transport,
    bytes: num(e.bytes),
    publishedAtMs: num(e.publishedAtMs),
    ...(e.replacesInit === true && e.version === 0 ? { replacesInit: true } : {}),
  };
}

/**
 * Resolves once the run's learner has published weights (its version 0 comes once it has started, after
 * a cold start that may take minutes): looks every `pollMs`, also while the events stream is not there
 * yet. Rejects only when `signal` aborts.
 */
export async function untilWeightsPublished(bus: Bus, run: string, signal?: AbortSignal, pollMs = 1000): Promise<void> {
  const s = runSubjects(run);
  for (;;) {
    if (signal?.aborted) throw new ParleyError('cancelled', 'stopped while waiting for the learner\'s first weights');
    try {
      if (await bus.lastMessage(s.eventsStream, s.weightsPublished)) return;
    } catch {
      // no events stream yet, or the bus is reconnecting: look again
    }
    await sleep(pollMs, signal).catch(() => undefined);
  }
}
