// Refused trajectories leave the work queue for the run's dead-letter stream: the original payload,
// why in headers, then an ack, so a trajectory the learner cannot train on is kept for inspection and
// never delivered again.

import type { Bus, BusMessage } from '../core/bus/index.js';
import { DEAD_LETTER_HEADERS, runStreamConfigs, runSubjects } from '../core/run-subjects.js';

/** Why a trajectory was refused. */
export interface DeadLetter {
  /** A short code (the `reason` label of parley_learner_dead_letters_total). */
  reason: string;
  /** A sentence: what was wrong, or the engine's message. */
  detail: string;
  /** The trajectory's id, when it could be read. */
  trajectoryId?: string;
}

/** The dead-letter stream's config (core's, so every component creates the same). */
export const deadLetterStreamConfig = (run: string) => runStreamConfigs(run).deadLetters;

const MAX_HEADER_CHARS = 1000;

/** A header value NATS carries as written: printable ASCII on one line, at most 1000 characters. */
function headerValue(s: string): string {
  const flat = s.replace(/[^\x20-\x7e]/g, '?');
  return flat.length > MAX_HEADER_CHARS ? `${flat.slice(0, MAX_HEADER_CHARS - 3)}...` : flat;
}

/**
 * Publishes the payload of `msgs` (deliveries of one trajectory) to parley.<run>.dead_letters with
 * `letter` in headers, then acks every delivery. The msgId is the original's stream sequence, so a
 * learner that crashed between the publish and the ack stores it once. Rejects with BusError when the
 * publish fails; the deliveries are then not ended (the caller naks them).
 */
export async function deadLetter(bus: Bus, run: string, msgs: readonly BusMessage[], letter: DeadLetter): Promise<void> {
  const first = msgs[0];
  if (!first) return;
  const headers: Record<string, string> = {
    [DEAD_LETTER_HEADERS.reason]: headerValue(letter.reason),
    [DEAD_LETTER_HEADERS.detail]: headerValue(letter.detail),
    [DEAD_LETTER_HEADERS.sourceSeq]: String(first.seq),
  };
  if (letter.trajectoryId) headers[DEAD_LETTER_HEADERS.trajectoryId] = headerValue(letter.trajectoryId);
  await bus.publish(runSubjects(run).deadLetters, first.data, { msgId: `dead-letter-${first.seq}`, headers });
  for (const m of msgs) m.ack();
}
