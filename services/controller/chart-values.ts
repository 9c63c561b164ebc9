// The Helm chart's values as one zod schema, every field documented with its default; the chart's
// values.schema.json is generated from it and values.yaml is checked against it in tests.

import { z } from 'zod';

const image = (repository: string, tag: string) =>
  z
    .object({
      repository: z.string().min(1).default(repository),
      /** Empty: the chart's appVersion (Parley images) or the pinned tag. */
      tag: z.string().default(tag),
    })
    .strict()
    .prefault({});
const resources = z
  .object({ requests: z.record(z.string(), z.union([z.string(), z.number()])).default({}), limits: z.record(z.string(), z.union([z.string(), z.number()])).default({}) })
  .strict();
const monitor = z
  .object({
    /** Needs the Prometheus Operator's CRDs. */
    enabled: z.boolean().default(false),
    interval: z.string().regex(/^[0-9]+(ms|s|m|h)$/).default('30s'),
    /** Extra labels, e.g. the `release` label your Prometheus selects monitors by. */
    labels: z.record(z.string(), z.string()).default({}),
  })
  .strict()
  .prefault({});

export const ChartValuesSchema = z
  .object({
    nameOverride: z.string().default(''),
    fullnameOverride: z.string().default(''),
    /** The TypeScript services' image (controller, policy sidecar, user simulator, sandbox, rollout, learner). */
    image: image('ghcr.io/parley-dev/parley', ''),
    /** The PyTorch trainer engine image. */
    engineImage: image('ghcr.io/parley-dev/parley-engine', ''),
    /** vLLM's OpenAI-compatible server. */
    vllmImage: image('vllm/vllm-openai', 'v0.10.1.1'),
    imagePullPolicy: z.enum(['Always', 'IfNotPresent', 'Never']).default('IfNotPresent'),
    imagePullSecrets: z.array(z.object({ name: z.string().min(1) }).strict()).default([]),
    controller: z
      .object({
        /** Replicas; more than one needs leaderElect. */
        replicas: z.number().int().min(1).default(2),
        /** Reconcile only this namespace (a Role instead of a ClusterRole); empty: every namespace. */
        watchNamespace: z.string().default(''),
        leaderElect: z.boolean().default(true),
        /** Runs reconciled at once. */
        workers: z.number().int().min(1).default(2),
        /** Every run is reconciled at least this often (ms). */
        resyncMs: z.number().int().min(1000).default(30_000),
        /** Backoff before a failed actor pod is replaced: first and largest (ms). */
        restartBaseMs: z.number().int().min(0).default(10_000),
        restartMaxMs: z.number().int().min(0).default(300_000),
        /** Scheduler for gang actor groups (Volcano, coscheduling); empty: the default scheduler. */
        gangSchedulerName: z.string().default(''),
        logLevel: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
        resources: resources.default({ requests: { cpu: '100m', memory: '256Mi' }, limits: { memory: '512Mi' } }),
        nodeSelector: z.record(z.string(), z.string()).default({}),
        tolerations: z.array(z.record(z.string(), z.unknown())).default([]),
        affinity: z.record(z.string(), z.unknown()).default({}),
        podAnnotations: z.record(z.string(), z.string()).default({}),
      })
      .strict()
      .prefault({}),
    actors: z
      .object({
        /** PersistentVolumeClaim mounted at /data in learner and policy pods (checkpoints, weights, models); empty: emptyDir and weights over NATS. */
        sharedVolumeClaim: z.string().default(''),
        /** τ²-bench data root inside the Parley image. */
        tau2DataDir: z.string().min(1).default('/opt/parley/data/tau2'),
      })
      .strict()
      .prefault({}),
    /** An external NATS URL; empty: the nats subchart's service. */
    natsUrl: z.string().default(''),
    /** A Secret holding the NATS URL with credentials (used instead of natsUrl by the controller and every actor). */
    natsUrlSecret: z.object({ name: z.string().default(''), key: z.string().default('url') }).strict().prefault({}),
    serviceAccount: z
      .object({ create: z.boolean().default(true), name: z.string().default(''), annotations: z.record(z.string(), z.string()).default({}) })
      .strict()
      .prefault({}),
    rbac: z.object({ create: z.boolean().default(true) }).strict().prefault({}),
    metrics: z
      .object({
        /** The controller's /metrics and /healthz port. */
        port: z.number().int().min(1).max(65535).default(8080),
        /** Scrapes the controller (parley_controller_*, parley_run_*). */
        serviceMonitor: monitor,
        /** Scrapes every actor pod's `metrics` port (parley_learner_*, parley_rollout_*, …). */
        podMonitor: monitor,
      })
      .strict()
      .prefault({}),
    /** Grafana dashboards as ConfigMaps the Grafana sidecar picks up by label. */
    dashboards: z
      .object({
        enabled: z.boolean().default(true),
        labels: z.record(z.string(), z.string()).default({ grafana_dashboard: '1' }),
        annotations: z.record(z.string(), z.string()).default({}),
      })
      .strict()
      .prefault({}),
    /** Values of the official nats chart (a dependency): JetStream on file storage. */
    nats: z.looseObject({ enabled: z.boolean().default(true) }).prefault({}),
    /** Helm's global values (shared with subcharts). */
    global: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();

export type ChartValues = z.infer<typeof ChartValuesSchema>;

/** values.schema.json (JSON Schema draft-07, which Helm validates values against). */
export function chartValuesJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(ChartValuesSchema, { io: 'input', target: 'draft-7', unrepresentable: 'throw' }) as Record<string, unknown>;
  return { ...schema, title: 'Parley chart values', description: 'Generated from services/controller/chart-values.ts; do not edit.' };
}
