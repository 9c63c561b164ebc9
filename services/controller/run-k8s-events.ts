// Kubernetes Events on a TrainingRun (phase changes, restarts), so `kubectl describe trainingrun` tells
// the story. Best effort: a failure to record one is logged, never fails a reconcile.

import type { CoreV1Event } from '@kubernetes/client-node';
import type { Logger } from '../core/logger.js';
import type { Clock } from './clock.js';
import type { KubeClient } from './kube-client.js';
import { API_VERSION, KIND, type TrainingRun } from './training-run.js';

/** Records an Event about `run`. Never rejects. */
export async function recordEvent(
  deps: { k8s: KubeClient; clock: Clock; logger: Logger },
  run: TrainingRun,
  type: 'Normal' | 'Warning',
  reason: string,
  message: string,
): Promise<void> {
  const now = new Date(deps.clock.now()).toISOString();
  const event: CoreV1Event = {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { generateName: `${run.metadata.name}.`, namespace: run.metadata.namespace },
    involvedObject: {
      apiVersion: API_VERSION,
      kind: KIND,
      name: run.metadata.name,
      namespace: run.metadata.namespace,
      uid: run.metadata.uid,
      resourceVersion: run.metadata.resourceVersion,
    },
    type,
    reason,
    message: message.slice(0, 1024),
    source: { component: 'parley-controller' },
    reportingComponent: 'parley.dev/controller',
    firstTimestamp: now as unknown as Date,
    lastTimestamp: now as unknown as Date,
    count: 1,
  };
  try {
    await deps.k8s.createEvent(event);
  } catch (e) {
    deps.logger.warn({ run: run.metadata.name, reason, err: (e as Error).message }, 'could not record an event');
  }
}
