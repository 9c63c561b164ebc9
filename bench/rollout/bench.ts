// Rollout benchmark: runs `parley bench rollout`'s pipeline (async and batch-synchronous, with worker
// crashes) and records the report in bench/RESULTS.md.
// Run: npx tsx bench/rollout/bench.ts [--tasks 48 --group 4 --workers 2 --concurrency 32 --kill-worker-every 40]

import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { runRolloutBench } from '../../services/rollout/bench-rollout.js';
import { writeResultsSection } from '../results.js';

const { values: v } = parseArgs({
  options: {
    tasks: { type: 'string', default: '48' },
    group: { type: 'string', default: '4' },
    workers: { type: 'string', default: '2' },
    concurrency: { type: 'string', default: '32' },
    'kill-worker-every': { type: 'string', default: '40' },
    capacity: { type: 'string', default: '8000' },
    'max-seq-rate': { type: 'string', default: '200' },
    'data-dir': { type: 'string', default: process.env.PARLEY_TAU2_DATA ?? '../shared/data/tau2' },
    nats: { type: 'string' },
  },
});
const o = {
  tasks: Number(v.tasks), group: Number(v.group), workers: Number(v.workers), concurrency: Number(v.concurrency),
  killWorkerEvery: Number(v['kill-worker-every']), out: resolve('out/bench-rollout'), dataDir: resolve(v['data-dir']!), natsUrl: v.nats,
  capacityTokensPerS: Number(v.capacity), maxSequenceTokensPerS: Number(v['max-seq-rate']), medianCompletionTokens: 40, seed: 1, ackWaitMs: 2000,
};
const r = await runRolloutBench(o, (line) => process.stderr.write(`${line}\n`));
const s = r.baseline_sync;
const row = (name: string, x: Record<string, any>) =>
  `| ${name} | ${x.tasks_published} | ${x.trajectories_received} | ${x.duplicates_dropped} | ${x.lost} | ${x.workers_killed} | ${x.achieved_tokens_per_s.toFixed(0)} | ${x.efficiency.toFixed(3)} | ${x.p50_turn_overhead_ms.toFixed(2)} | ${x.p99_turn_overhead_ms.toFixed(2)} | ${x.wall_s.toFixed(1)} |`;
const body = `
Simulated continuous-batching server: ${o.capacityTokensPerS} tokens/s shared, ${o.maxSequenceTokensPerS} tokens/s per sequence (so ≥ ${Math.ceil(o.capacityTokensPerS / o.maxSequenceTokensPerS)} concurrent sequences saturate it), log-normal reply lengths (median 40), geometric extra turns; τ² retail sandbox and the scripted user over the ${o.natsUrl ? 'NATS' : 'in-process'} bus (request-reply); ${o.workers} workers × ${o.concurrency} episodes; a worker crashed every ${o.killWorkerEvery} trajectories (its tasks redelivered after a 2 s ack wait).

| mode | published | received | duplicates dropped | lost | workers killed | achieved tokens/s | efficiency | p50 turn overhead ms | p99 turn overhead ms | wall s |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
${row('async', r as any)}
${row('batch-synchronous', s)}

Async efficiency / synchronous efficiency: **${(r.async_over_sync_efficiency as number).toFixed(2)}×**. Efficiency includes the tail of the run (the last episodes cannot fill the server) and the crash redeliveries; turn overhead is an episode's wall time minus its time waiting on the simulated server, per policy turn (sandbox, user simulator, bus hops, rendering).
`;
process.stdout.write(body);
writeResultsSection('Rollout pipeline', `npx tsx bench/rollout/bench.ts --tasks ${o.tasks} --group ${o.group} --workers ${o.workers} --concurrency ${o.concurrency} --kill-worker-every ${o.killWorkerEvery}`, body);
