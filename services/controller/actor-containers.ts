// The containers of each actor group: which image runs what, with which ports, probes, environment
// (API keys and NATS credentials only by secretKeyRef) and resources from the run spec.

import type { V1Container, V1EnvVar, V1Probe, V1ResourceRequirements, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import type { ControllerConfig } from './config.js';
import type { GroupName } from './labels.js';
import { cacheEnv, containerSecurityContext, scratchMounts } from './pod-security.js';
import { builtinDir, checkpointDir, CONFIG_MOUNT, DATA_MOUNT, MODEL_CLAIM_MOUNT, modelPath } from './run-config.js';
import type { ActorGroup, RunSpec } from './run-spec.js';

export const PORTS = { grpc: 50051, usersimGrpc: 50053, learnerGrpc: 50061, engine: 50071, metrics: 9464, vllm: 8000 } as const;
const GPU = 'nvidia.com/gpu';

/** Extended resources (GPUs) must appear in limits; a request alone is copied there, as Kubernetes requires. */
export function resourceRequirements(r: ActorGroup['resources']): V1ResourceRequirements {
  const requests = Object.fromEntries(Object.entries(r.requests).map(([k, v]) => [k, String(v)]));
  const limits = Object.fromEntries(Object.entries(r.limits).map(([k, v]) => [k, String(v)]));
  for (const [k, v] of Object.entries(requests)) if (k.includes('/') && limits[k] === undefined) limits[k] = v;
  return { ...(Object.keys(requests).length ? { requests } : {}), ...(Object.keys(limits).length ? { limits } : {}) };
}

/** GPUs a group asks for per pod. */
export function gpuCount(group: ActorGroup): number {
  return Number(group.resources.limits[GPU] ?? group.resources.requests[GPU] ?? 0);
}

/** `name` or `name/key` (key default `api-key`) of the Secret holding the user simulator's API key. */
export function parseSecretRef(ref: string, defaultKey = 'api-key'): { name: string; key: string } {
  const [name, key] = ref.split('/', 2);
  return { name: name!, key: key || defaultKey };
}

/** PARLEY_BUS_URL: from the Secret when configured (it carries credentials), else in plain text. */
export function busEnv(config: ControllerConfig): V1EnvVar {
  if (config.busUrlSecret) return { name: 'PARLEY_BUS_URL', valueFrom: { secretKeyRef: parseSecretRef(config.busUrlSecret) } };
  return { name: 'PARLEY_BUS_URL', value: config.busUrl };
}

/** Serve over NATS request-reply in the run too (rollout workers and the coordinator call actors that way; gRPC stays for probes and external clients). */
const busServeArgs = (run: string) => ['--nats', '$(PARLEY_BUS_URL)', '--run', run];

function baseEnv(spec: RunSpec, config: ControllerConfig, group: ActorGroup): V1EnvVar[] {
  return [
    { name: 'PARLEY_RUN', value: spec.name },
    busEnv(config),
    { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    { name: 'PARLEY_LOG_LEVEL', value: 'info' },
    ...Object.entries(group.env).map(([name, value]) => ({ name, value })),
  ];
}

const grpcProbe = (port: number, failureThreshold = 3, service?: string): V1Probe => ({ grpc: { port, ...(service ? { service } : {}) }, periodSeconds: 10, timeoutSeconds: 5, failureThreshold });

function parleyContainer(name: string, args: string[], config: ControllerConfig, env: V1EnvVar[], resources: V1ResourceRequirements): V1Container {
  return {
    name,
    image: config.parleyImage,
    imagePullPolicy: config.imagePullPolicy,
    args,
    env,
    resources,
    securityContext: containerSecurityContext(),
    volumeMounts: [...scratchMounts(false), { name: 'run-config', mountPath: CONFIG_MOUNT, readOnly: true }],
  };
}

/** vLLM serving `model` (a hub id or a folder in the pod) under the name `served`, which the policy sidecar and user simulator ask for. */
function vllmContainer(model: string, served: string, maxLen: number, group: ActorGroup, config: ControllerConfig, lora?: RunSpec['model']['lora'], mounts: V1VolumeMount[] = []): V1Container {
  const gpus = gpuCount(group);
  const args = ['--model', model, '--served-model-name', served, '--host', '0.0.0.0', '--port', String(PORTS.vllm), '--max-model-len', String(maxLen)];
  if (gpus > 1) args.push('--tensor-parallel-size', String(gpus));
  if (lora) args.push('--enable-lora', '--max-lora-rank', String(lora.rank), '--max-loras', '2');
  return {
    name: 'vllm',
    image: group.image ?? config.vllmImage,
    imagePullPolicy: config.imagePullPolicy,
    args,
    // Runtime LoRA loading is how new policy versions reach vLLM (immutable adapter names per version).
    env: [...cacheEnv(), { name: 'VLLM_ALLOW_RUNTIME_LORA_UPDATING', value: 'True' }, ...Object.entries(group.env).map(([name, value]) => ({ name, value }))],
    ports: [{ name: 'vllm', containerPort: PORTS.vllm }],
    resources: resourceRequirements(group.resources),
    securityContext: containerSecurityContext(),
    volumeMounts: [...scratchMounts(true), { name: 'data', mountPath: DATA_MOUNT }, ...mounts],
    startupProbe: { httpGet: { path: '/health', port: PORTS.vllm }, periodSeconds: 10, failureThreshold: 180 },
    readinessProbe: { httpGet: { path: '/health', port: PORTS.vllm }, periodSeconds: 10 },
  };
}

function engineContainer(spec: RunSpec, group: ActorGroup, config: ControllerConfig, resources: V1ResourceRequirements): V1Container {
  return {
    name: 'engine',
    image: config.engineImage,
    imagePullPolicy: config.imagePullPolicy,
    args: ['serve', '--port', String(PORTS.engine), '--host', '127.0.0.1'],
    env: [...cacheEnv(), { name: 'PARLEY_RUN', value: spec.name }, ...Object.entries(group.env).map(([name, value]) => ({ name, value }))],
    resources,
    securityContext: containerSecurityContext(),
    volumeMounts: [...scratchMounts(true), { name: 'data', mountPath: DATA_MOUNT }, ...modelMounts(spec)],
  };
}


const isBuiltin = (spec: RunSpec) => spec.model.name === 'builtin';

/**
 * The policy sidecar's tokenizer folder when model.tokenizer is left out: the model folder of a pvc or url
 * source, else /data/models/<model.name> (a hub model's tokenizer must be put there, or named by model.tokenizer).
 */
function tokenizerDir(spec: RunSpec): string {
  return spec.model.source ? modelPath(spec) : `${DATA_MOUNT}/models/${spec.model.name}`;
}

/**
 * The init container that generates the builtin model's domain and tokenizer into the data volume
 * (idempotent); the learner's also writes the cold start's demonstrations when sft asks for them.
 */
function prepareBuiltinContainer(spec: RunSpec, config: ControllerConfig, demonstrations = false): V1Container {
  const args = ['prepare', 'builtin', '--spec', `${CONFIG_MOUNT}/run.yaml`, '--out', builtinDir(spec)];
  if (demonstrations) args.push('--demonstrations');
  const c = parleyContainer('prepare', args, config, [], {
    requests: { cpu: '250m', memory: '256Mi' },
    limits: { memory: '1Gi' },
  });
  c.volumeMounts!.push({ name: 'data', mountPath: DATA_MOUNT });
  // Its last log lines become the termination message the controller puts in the run's ActorsReady condition.
  c.terminationMessagePolicy = 'FallbackToLogsOnError';
  return c;
}

/** The pvc model source's claim, read-only: the policy and learner pods mount it where modelPath points. */
function modelVolumes(spec: RunSpec): V1Volume[] {
  const s = spec.model.source;
  return s?.kind === 'pvc' ? [{ name: 'model', persistentVolumeClaim: { claimName: s.claimName!, readOnly: true } }] : [];
}

function modelMounts(spec: RunSpec): V1VolumeMount[] {
  return spec.model.source?.kind === 'pvc' ? [{ name: 'model', mountPath: MODEL_CLAIM_MOUNT, readOnly: true }] : [];
}

/** The init container that downloads a url model source into the data volume (idempotent: a folder already there is kept). */
function prepareModelContainer(spec: RunSpec, config: ControllerConfig): V1Container {
  const c = parleyContainer('prepare-model', ['prepare', 'model', '--url', spec.model.source!.url!, '--out', modelPath(spec)], config, [], {
    requests: { cpu: '500m', memory: '256Mi' },
    limits: { memory: '1Gi' },
  });
  c.volumeMounts!.push({ name: 'data', mountPath: DATA_MOUNT });
  // A failed download's message (naming model.source.url) reaches the run's ActorsReady condition.
  c.terminationMessagePolicy = 'FallbackToLogsOnError';
  return c;
}

/** What runs before the containers of a pod that loads the model: the builtin model's generation or a url source's download. */
function modelInitContainers(spec: RunSpec, config: ControllerConfig, demonstrations = false): { initContainers?: V1Container[] } {
  if (isBuiltin(spec)) return { initContainers: [prepareBuiltinContainer(spec, config, demonstrations && spec.sft.enabled && typeof spec.sft.demonstrations === 'number')] };
  if (spec.model.source?.kind === 'url') return { initContainers: [prepareModelContainer(spec, config)] };
  return {};
}

const sidecarResources: V1ResourceRequirements = { requests: { cpu: '500m', memory: '1Gi' }, limits: { memory: '4Gi' } };

/** Containers of one group's pods. `uses` tells the pod builder which volumes they need. */
export function groupContainers(
  group: GroupName,
  spec: RunSpec,
  config: ControllerConfig,
): { containers: V1Container[]; initContainers?: V1Container[]; volumes?: V1Volume[]; gpuCaches: boolean; data: boolean } {
  const g = spec.actors[group];
  const run = spec.name;
  const env = baseEnv(spec, config, g);
  const metricsPort = { name: 'metrics', containerPort: PORTS.metrics };
  switch (group) {
    case 'sandbox': {
      const args = ['serve', 'sandbox', '--port', String(PORTS.grpc), '--metrics-port', String(PORTS.metrics), '--domains', spec.data.domain, ...busServeArgs(run)];
      // The builtin model's local domain is generated into the data volume by the pod's init container.
      const dataDir = isBuiltin(spec) ? `${builtinDir(spec)}/data` : spec.data.dataDir ? spec.data.dataDir.replace(/\/[^/]+\/?$/, '') : config.tau2DataDir;
      args.push('--data-dir', dataDir);
      const c = parleyContainer('sandbox', args, config, env, resourceRequirements(g.resources));
      if (g.image) c.image = g.image;
      Object.assign(c, { ports: [{ name: 'grpc', containerPort: PORTS.grpc }, metricsPort], readinessProbe: grpcProbe(PORTS.grpc), livenessProbe: grpcProbe(PORTS.grpc, 6) });
      if (!isBuiltin(spec)) return { containers: [c], gpuCaches: false, data: false };
      c.volumeMounts!.push({ name: 'data', mountPath: DATA_MOUNT, readOnly: true });
      return { containers: [c], initContainers: [prepareBuiltinContainer(spec, config)], gpuCaches: false, data: true };
    }
    case 'userSimulator': {
      const u = spec.userSimulator;
      const ownLlm = u.mode === 'llm' && !u.baseUrl;
      const args = ['serve', 'usersim', '--mode', u.mode, '--port', String(PORTS.usersimGrpc), '--metrics-port', String(PORTS.metrics), '--temperature', String(u.temperature)];
      args.push(...busServeArgs(run));
      if (u.mode === 'llm') args.push('--base-url', u.baseUrl ?? `http://127.0.0.1:${PORTS.vllm}/v1`, '--model', u.model ?? '');
      const userEnv = [...env, { name: 'PARLEY_TAU2_DATA', value: config.tau2DataDir }];
      if (u.apiKeySecret) {
        userEnv.push({ name: 'OPENAI_API_KEY', valueFrom: { secretKeyRef: parseSecretRef(u.apiKeySecret) } });
        args.push('--api-key-env', 'OPENAI_API_KEY');
      }
      const c = parleyContainer('usersim', args, config, userEnv, ownLlm ? sidecarResources : resourceRequirements(g.resources));
      if (g.image && !ownLlm) c.image = g.image;
      Object.assign(c, { ports: [{ name: 'grpc', containerPort: PORTS.usersimGrpc }, metricsPort], readinessProbe: grpcProbe(PORTS.usersimGrpc), livenessProbe: grpcProbe(PORTS.usersimGrpc, 6) });
      const containers = ownLlm ? [vllmContainer(u.model!, u.model!, spec.model.maxContextTokens, g, config), c] : [c];
      return { containers, gpuCaches: ownLlm, data: ownLlm };
    }
    case 'policy': {
      const builtin = isBuiltin(spec);
      // The sidecar reads its config from PARLEY_* variables: PARLEY_BUS_URL and PARLEY_RUN (in env) make it serve over NATS too.
      const policyEnv: V1EnvVar[] = [
        ...env,
        { name: 'PARLEY_MODEL_DIR', value: builtin ? `${builtinDir(spec)}/model` : (spec.model.tokenizer ?? tokenizerDir(spec)) },
        { name: 'PARLEY_MODEL_NAME', value: spec.model.name },
        { name: 'PARLEY_MAX_CONTEXT_TOKENS', value: String(spec.model.maxContextTokens) },
        { name: 'PARLEY_PORT', value: String(PORTS.grpc) },
        { name: 'PARLEY_METRICS_PORT', value: String(PORTS.metrics) },
        // Serve only the learner's weights: after a cold start its version 0 is not the replica's fresh Init.
        { name: 'PARLEY_AWAIT_WEIGHTS', value: 'true' },
        ...(builtin
          ? [
              { name: 'PARLEY_ENGINE_ADDRESS', value: `127.0.0.1:${PORTS.engine}` },
              // The pod's engine starts as the learner's does (same model, settings and seed): version 0.
              { name: 'PARLEY_ENGINE_INIT_FILE', value: `${CONFIG_MOUNT}/learner.yaml` },
            ]
          : [{ name: 'PARLEY_BACKEND_URL', value: `http://127.0.0.1:${PORTS.vllm}/v1` }]),
      ];
      const sidecar = parleyContainer('policy', ['serve', 'policy'], config, policyEnv, sidecarResources);
      // The tokenizer folder lives on the data volume (generated for builtin, downloaded or on the claim otherwise).
      sidecar.volumeMounts!.push({ name: 'data', mountPath: DATA_MOUNT, readOnly: true }, ...modelMounts(spec));
      // Ready once the replica serves the newest published weights (parley.v1.Policy turns SERVING after its first load); alive while the server answers.
      Object.assign(sidecar, { ports: [{ name: 'grpc', containerPort: PORTS.grpc }, metricsPort], readinessProbe: grpcProbe(PORTS.grpc, 3, 'parley.v1.Policy'), livenessProbe: grpcProbe(PORTS.grpc, 6) });
      const backend = builtin
        ? engineContainer(spec, g, config, resourceRequirements(g.resources))
        : vllmContainer(modelPath(spec), spec.model.name, spec.model.maxContextTokens, g, config, spec.model.lora, modelMounts(spec));
      return { containers: [backend, sidecar], ...modelInitContainers(spec, config), volumes: modelVolumes(spec), gpuCaches: true, data: true };
    }
    case 'learner': {
      const learnerEnv: V1EnvVar[] = [
        ...env,
        { name: 'PARLEY_TRAINER_ADDRESS', value: `127.0.0.1:${PORTS.engine}` },
        { name: 'PARLEY_PORT', value: String(PORTS.learnerGrpc) },
        { name: 'PARLEY_METRICS_PORT', value: String(PORTS.metrics) },
        // The builtin model's vocabulary size comes from its generated tokenizer folder; the cold start tokenizes with the model's tokenizer.
        ...(isBuiltin(spec)
          ? [{ name: 'PARLEY_MODEL_DIR', value: `${builtinDir(spec)}/model` }]
          : spec.sft.enabled
            ? [{ name: 'PARLEY_MODEL_DIR', value: spec.model.tokenizer ?? tokenizerDir(spec) }]
            : []),
      ];
      const learner = parleyContainer('learner', ['serve', 'learner', '--config', `${CONFIG_MOUNT}/learner.yaml`], config, learnerEnv, {
        requests: { cpu: '1', memory: '2Gi' },
        limits: { memory: '8Gi' },
      });
      learner.volumeMounts!.push({ name: 'data', mountPath: DATA_MOUNT });
      // The learner finishes and checkpoints its step on SIGTERM; its readiness follows the engine's health.
      Object.assign(learner, {
        ports: [{ name: 'grpc', containerPort: PORTS.learnerGrpc }, metricsPort],
        readinessProbe: grpcProbe(PORTS.learnerGrpc),
        startupProbe: { ...grpcProbe(PORTS.learnerGrpc), failureThreshold: 90 },
      });
      const engine = engineContainer(spec, g, config, resourceRequirements(g.resources));
      // SaveWeights only under the run's checkpoint folder (the engine refuses any other path).
      engine.env!.push({ name: 'PARLEY_WEIGHTS_ROOT', value: checkpointDir(spec) });
      if (g.image) engine.image = g.image;
      return { containers: [engine, learner], ...modelInitContainers(spec, config, true), volumes: modelVolumes(spec), gpuCaches: true, data: true };
    }
    case 'rollout': {
      const args = ['serve', 'rollout', '--run', run, '--nats', '$(PARLEY_BUS_URL)', '--name', '$(POD_NAME)', '--concurrency', String(spec.rollout.concurrency)];
      // Actors are reached over NATS request-reply: location-transparent, load-balanced by queue groups.
      args.push('--sandbox', 'nats', '--usersim', 'nats', '--policy', 'nats', '--metrics-port', String(PORTS.metrics));
      const c = parleyContainer('rollout', args, config, env, resourceRequirements(g.resources));
      if (g.image) c.image = g.image;
      Object.assign(c, { ports: [metricsPort], livenessProbe: { httpGet: { path: '/healthz', port: PORTS.metrics }, periodSeconds: 10, failureThreshold: 6 } });
      return { containers: [c], gpuCaches: false, data: false };
    }
    case 'coordinator': {
      // Lists the train tasks from the run's Sandbox over NATS; follows the learner through the run-state KV bucket.
      const args = ['serve', 'coordinator', '--config', `${CONFIG_MOUNT}/coordinator.yaml`, '--sandbox', 'nats', '--metrics-port', String(PORTS.metrics)];
      const c = parleyContainer('coordinator', args, config, env, resourceRequirements(g.resources));
      if (g.image) c.image = g.image;
      Object.assign(c, {
        ports: [metricsPort],
        // Ready once it publishes (the Sandbox answered); alive as long as the process serves /healthz.
        readinessProbe: { httpGet: { path: '/readyz', port: PORTS.metrics }, periodSeconds: 10 },
        livenessProbe: { httpGet: { path: '/healthz', port: PORTS.metrics }, periodSeconds: 10, failureThreshold: 6 },
      });
      return { containers: [c], gpuCaches: false, data: false };
    }
  }
}
