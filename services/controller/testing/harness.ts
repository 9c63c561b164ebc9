// Test support: a controller wired to a Kubernetes API (a test double's kubeconfig), an in-process bus
// and its own registry, plus helpers to apply TrainingRuns the way kubectl would and to wait for state.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { createMemoryBus, type Bus } from '../../core/bus/index.js';
import { createLogger } from '../../core/logger.js';
import { Registry } from '../../core/metrics.js';
import { realClock } from '../clock.js';
import { resolveControllerConfig, type ControllerConfig } from '../config.js';
import { Controller } from '../controller.js';
import { createKubeClient, type KubeClient } from '../kube-client.js';
import { GROUP, PLURAL, VERSION, type TrainingRun } from '../training-run.js';

export const REPO = join(import.meta.dirname, '../../..');

/** Settings that make a test cluster move fast (short backoffs, frequent resync, no election). */
export const FAST: Partial<ControllerConfig> = {
  leaderElect: false,
  podNamespace: 'parley-system',
  resyncMs: 1000,
  queueBaseMs: 5,
  queueMaxMs: 500,
  restartBaseMs: 300,
  restartMaxMs: 1200,
  workers: 2,
  metricsPort: -1,
  busUrl: 'nats://parley-nats.parley-system.svc:4222',
};

export interface Harness {
  controller: Controller;
  k8s: KubeClient;
  bus: Bus;
  registry: Registry;
  config: ControllerConfig;
  /** A user's clients (kubectl's role), separate from the controller's. */
  runs: CustomObjectsApi;
  user: KubeClient;
  /** Stops the controller and closes the bus. */
  close(): Promise<void>;
}

/** Starts a controller against `kc` (leading at once unless leaderElect); `userKc` is what tests act as (default `kc`). */
export async function startHarness(kc: KubeConfig, overrides: Partial<ControllerConfig> = {}, bus: Bus = createMemoryBus(), userKc: KubeConfig = kc): Promise<Harness> {
  const config = resolveControllerConfig({ ...FAST, ...overrides }, {});
  const k8s = createKubeClient(kc);
  const registry = new Registry();
  const logger = createLogger('controller-test', process.env.PARLEY_TEST_VERBOSE ? 'debug' : 'silent');
  const controller = new Controller(config, { k8s, bus, logger, registry, clock: realClock() });
  await controller.start();
  if (!config.leaderElect) await controller.whenLeading();
  return {
    controller,
    k8s,
    bus,
    registry,
    config,
    runs: userKc.makeApiClient(CustomObjectsApi),
    user: createKubeClient(userKc),
    close: async () => {
      await controller.stop();
      await bus.close();
    },
  };
}

/** A TrainingRun from k8s/examples/<name>.yaml, optionally renamed and edited. */
export function exampleRun(name: string, edit: (run: TrainingRun) => void = () => {}): TrainingRun {
  const run = parse(readFileSync(join(REPO, 'k8s/examples', `${name}.yaml`), 'utf8')) as TrainingRun;
  edit(run);
  return run;
}

/** Creates the run as `kubectl create` would. */
export async function createRun(h: Harness, namespace: string, run: TrainingRun): Promise<TrainingRun> {
  return (await h.runs.createNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, body: run })) as TrainingRun;
}

/** Reads, edits and writes the run's spec (retrying on 409 like kubectl edit would ask you to). */
export async function editRun(h: Harness, namespace: string, name: string, edit: (run: TrainingRun) => void): Promise<TrainingRun> {
  for (let i = 0; ; i++) {
    const run = (await h.user.getRun(namespace, name))!;
    edit(run);
    try {
      return await h.user.replaceRun(run);
    } catch (e) {
      if (i > 5) throw e;
    }
  }
}

export async function deleteRun(h: Harness, namespace: string, name: string): Promise<void> {
  await h.runs.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, name });
}

/** Polls `fn` until it returns a value other than undefined/false (or stops throwing); rejects with the last problem after `timeoutMs`. */
export async function eventually<T>(fn: () => T | Promise<T>, timeoutMs = 10_000, what = 'condition'): Promise<Exclude<T, undefined | false>> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as Exclude<T, undefined | false>;
      last = undefined;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The value of a metric series in `registry`, or undefined. */
export async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const m = registry.getSingleMetric(name);
  if (!m) return undefined;
  const { values } = await m.get();
  const hit = values.find((v) => Object.entries(labels).every(([k, x]) => String((v.labels as Record<string, unknown>)[k]) === x) && !('le' in v.labels));
  return hit?.value;
}
