// Learner-side cost of one step of 256 trajectories × 8k tokens (32 groups of 8): decoding, grouping,
// advantages (each estimator), micro-batch planning and encoding the ForwardBackward requests.
// The engine's own step time is not included (see the engine's benchmark).
// Run: npx tsx bench/learner/bench.ts [--repeats 20] [--tokens 8192] [--budget 65536]

import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { parseArgs } from 'node:util';
import { ForwardBackwardRequestSchema } from '../../services/core/gen/parley/v1/trainer_pb.js';
import { TrajectorySchema, type Trajectory } from '../../services/core/gen/parley/v1/rollout_pb.js';
import { NO_LIMITS, checkTrajectory } from '../../services/learner/intake.js';
import { computeAdvantages, GroupBuffer, learnerConfig, planStep, type Algorithm, type StepTrajectory } from '../../services/learner/index.js';
import { encodeForwardBackwardRequest } from '../../services/learner/wire.js';
import { writeResultsSection } from '../results.js';

const { values } = parseArgs({ options: { repeats: { type: 'string' }, tokens: { type: 'string' }, budget: { type: 'string' } } });
const repeats = Number(values.repeats ?? 20);
const tokens = Number(values.tokens ?? 8192);
const budget = Number(values.budget ?? 65_536);
const GROUPS = 32;
const GROUP_SIZE = 8;
const progress = (msg: string) => process.stderr.write(`bench/learner: ${msg}\n`);

/** A multi-turn episode: a 1k-token prompt, then turns of ~300 policy tokens, ~150 tool/user tokens. */
function episode(g: number, i: number): Trajectory {
  const tokenIds = new Array<number>(tokens);
  const lossMask = new Array<number>(tokens);
  const logprobs = new Array<number>(tokens);
  let seed = g * 7919 + i * 104729 + 1;
  for (let t = 0; t < tokens; t++) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    const inTurn = t >= 1024 && (t - 1024) % 450 < 300;
    tokenIds[t] = seed % 151_000;
    lossMask[t] = inTurn ? 1 : 0;
    logprobs[t] = inTurn ? -((seed % 1000) / 500) : 0;
  }
  return create(TrajectorySchema, {
    id: `bench/task-${g}/g${g}/${i}`,
    task: { run: 'bench', taskId: `task-${g}`, groupId: `g${g}`, sampleIndex: i, groupSize: GROUP_SIZE },
    tokenIds,
    lossMask,
    logprobs,
    reward: (g + i) % 3 === 0 ? 1 : 0,
    policyVersions: [10n],
  });
}

function stats(xs: number[]): { median: number; p90: number } {
  const s = [...xs].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)]!, p90: s[Math.min(s.length - 1, Math.floor(s.length * 0.9))]! };
}

function time<T>(fn: () => T): { ms: number; value: T } {
  const t0 = performance.now();
  const value = fn();
  return { ms: performance.now() - t0, value };
}

progress(`building ${GROUPS * GROUP_SIZE} trajectories of ${tokens} tokens`);
const encoded = Array.from({ length: GROUPS * GROUP_SIZE }, (_, k) => toBinary(TrajectorySchema, episode(Math.floor(k / GROUP_SIZE), k % GROUP_SIZE)));
const totalTokens = GROUPS * GROUP_SIZE * tokens;
const payloadMb = encoded.reduce((a, b) => a + b.length, 0) / 2 ** 20;

const rows: Record<string, number[]> = {};
const record = (name: string, ms: number) => (rows[name] ??= []).push(ms);
let microBatches = 0;
let requestMb = 0;

for (let r = 0; r < repeats + 2; r++) {
  const warm = r < 2;
  const decoded = time(() => encoded.map((b) => fromBinary(TrajectorySchema, b)));
  const checked = time(() => decoded.value.forEach((t) => checkTrajectory(t, { ...NO_LIMITS, vocabSize: 151_936 }, 10)));
  const grouped = time(() => {
    const buf = new GroupBuffer<StepTrajectory>({ defaultGroupSize: GROUP_SIZE, timeoutMs: 0, minGroupSize: 2, dropZeroVariance: true, maxStepsOffPolicy: 1 });
    for (const t of decoded.value) {
      const item = { id: t.id, tokenIds: t.tokenIds, lossMask: t.lossMask, logprobs: t.logprobs, reward: t.reward, minPolicyVersion: 10 };
      buf.add({ id: t.id, groupId: t.task!.groupId, groupSize: GROUP_SIZE, minPolicyVersion: 10, reward: t.reward, item }, 0, 10);
    }
    return buf.take(GROUPS, 10).groups.map((g) => g.members.map((m) => m.item));
  });
  const groups = grouped.value;
  for (const algorithm of ['grpo', 'dr_grpo', 'rloo', 'reinforce_pp'] as Algorithm[]) {
    const adv = time(() => computeAdvantages(groups, { algorithm }));
    if (!warm) record(`advantages: ${algorithm}`, adv.ms);
  }
  const cfg = learnerConfig({ run: 'bench', groupSize: GROUP_SIZE, groupsPerStep: GROUPS, microBatchTokens: budget });
  const plan = time(() => planStep(groups, cfg, 10));
  const requests = plan.value.microBatches.map((mb) => ({ sequences: mb.indices.map((i) => plan.value.sequences[i]!), loss: plan.value.loss, lossScale: mb.lossScale }));
  const encode = time(() => requests.map((req) => encodeForwardBackwardRequest(req)));
  // protobuf-es's generic encoder, for comparison (what the learner used before wire.ts); 3 samples suffice.
  if (!warm && (rows['encode with protobuf-es toBinary (comparison)']?.length ?? 0) < 3) {
    record('encode with protobuf-es toBinary (comparison)', time(() => requests.map((req) => toBinary(ForwardBackwardRequestSchema, create(ForwardBackwardRequestSchema, req)))).ms);
  }
  microBatches = plan.value.microBatches.length;
  requestMb = encode.value.reduce((a, b) => a + b.length, 0) / 2 ** 20;
  if (warm) continue;
  record('decode Trajectory protobufs', decoded.ms);
  record('check trajectories', checked.ms);
  record('grouping (32 groups of 8)', grouped.ms);
  record('plan step: GRPO advantages + sequences + micro-batches + loss scales', plan.ms);
  record('encode ForwardBackward requests (wire.ts)', encode.ms);
  record('intake subtotal (decode + check + grouping; overlapped with the previous step)', decoded.ms + checked.ms + grouped.ms);
  record('step critical path (plan + encode), before the first ForwardBackward', plan.ms + encode.ms);
  progress(`repeat ${r - 1}/${repeats}`);
}

const lines = [
  `${GROUPS * GROUP_SIZE} trajectories × ${tokens} tokens (${(totalTokens / 1e6).toFixed(2)} M tokens, ${payloadMb.toFixed(1)} MiB of Trajectory protobufs), ` +
    `${GROUPS} groups of ${GROUP_SIZE}, micro-batch budget ${budget} tokens → ${microBatches} micro-batches (${requestMb.toFixed(1)} MiB of ForwardBackward requests). ` +
    `Median and p90 over ${repeats} repeats after 2 warm-ups, one thread.`,
  '',
  '| phase | median ms | p90 ms | M tokens/s (median) |',
  '| --- | ---: | ---: | ---: |',
  ...Object.entries(rows).map(([name, xs]) => {
    const s = stats(xs);
    return `| ${name} | ${s.median.toFixed(1)} | ${s.p90.toFixed(1)} | ${(totalTokens / 1e6 / (s.median / 1000)).toFixed(1)} |`;
  }),
  '',
  'Grouping, advantages and batching (the plan) are the learner\'s per-step work; decoding and checking happen as trajectories arrive, ' +
    'overlapped with the previous step; encoding is on the step\'s critical path, before the first ForwardBackward. ' +
    'The engine\'s own step time for the small model is recorded by the engine\'s benchmark.',
];
const body = lines.join('\n');
process.stdout.write(body + '\n');
writeResultsSection('Learner', `npx tsx bench/learner/bench.ts --repeats ${repeats} --tokens ${tokens} --budget ${budget}`, body);
