// What a learner announces when it starts, for tests of the actors that wait for it: weights_published
// for version 0 on the run's events stream (the coordinator publishes no task and policy replicas with
// awaitWeights serve nothing before it).

import type { Bus } from '../../core/bus/index.js';
import { runStreamConfigs, runSubjects } from '../../core/run-subjects.js';
import { weightsPublishedMsgId, type WeightsPublishedEvent } from '../../core/weights-events.js';

/** Publishes the learner's version-0 weights_published for `run` (the stream is created when absent). */
export async function publishLearnerStarted(bus: Bus, run: string): Promise<void> {
  await bus.ensureStream(runStreamConfigs(run).events);
  const e: WeightsPublishedEvent = { run, version: 0, step: 0, uri: '/nonexistent/v00000000', kind: 'full', transport: 'directory', bytes: 0, publishedAtMs: Date.now() };
  await bus.publish(runSubjects(run).weightsPublished, new TextEncoder().encode(JSON.stringify(e)), { msgId: weightsPublishedMsgId(run, 0) });
}
