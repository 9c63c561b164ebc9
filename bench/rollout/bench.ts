// Rollout benchmark: runs `parley bench rollout`'s pipeline (async and batch-synchronous, with worker
// crashes), optionally a few asynchronous variants, and records the report in bench/RESULTS.md.
// Run: npx tsx bench/rollout/bench.ts [--tasks 48 --group 4 --workers 2 --concurrency 32 --kill-worker-every 40]
//        [--variant-concurrency 80] [--variant-direct] [--variant-nats nats://127.0.0.1:4222]

import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { runRolloutBench, type PhaseReport, type RolloutBenchOptions } from '../../services/rollout/bench-rollout.js';
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
    /** Extra asynchronous run with this many episodes per worker. */
    'variant-concurrency': { type: 'string' },
    /** Extra asynchronous run calling the sandbox and user simulator in-process (no bus, no serialization). */
    'variant-direct': { type: 'boolean', default: false },
    /** Extra asynchronous run over a real NATS server at this URL (request-reply and JetStream on loopback). */
    'variant-nats': { type: 'string' },
    /** The RESULTS.md section to write (a long run goes beside the default one). */
    section: { type: 'string', default: 'Rollout pipeline' },
    /** With --variant-nats: one more run with the sandbox and user simulator as their own processes. */
    'variant-nats-processes': { type: 'boolean', default: false },
  },
});
const o: RolloutBenchOptions = {
  tasks: Number(v.tasks), group: Number(v.group), workers: Number(v.workers), concurrency: Number(v.concurrency),
  killWorkerEvery: Number(v['kill-worker-every']), out: resolve('out/bench-rollout'), dataDir: resolve(v['data-dir']!), natsUrl: v.nats,
  capacityTokensPerS: Number(v.capacity), maxSequenceTokensPerS: Number(v['max-seq-rate']), medianCompletionTokens: 40, seed: 1, ackWaitMs: 2000,
};
const log = (line: string) => process.stderr.write(`${line}\n`);
const bus = o.natsUrl ? 'NATS' : 'in-process';
const r = await runRolloutBench(o, log);
const rows: [string, PhaseReport][] = [
  [`async, ${bus} bus`, { mode: 'async', ...r }],
  [`batch-synchronous, ${bus} bus`, r.baseline_sync!],
];
const variant = async (name: string, extra: Partial<RolloutBenchOptions>) => {
  log(`variant: ${name}`);
  const x = await runRolloutBench({ ...o, ...extra, syncBaseline: false, out: resolve(`out/bench-rollout/${name.replace(/[^a-z0-9]+/gi, '-')}`) }, log);
  rows.push([name, { mode: 'async', ...x }]);
};
if (v['variant-concurrency']) await variant(`async, ${bus} bus, ${v['variant-concurrency']} per worker`, { concurrency: Number(v['variant-concurrency']) });
if (v['variant-direct']) await variant('async, direct in-process calls', { transport: 'direct', natsUrl: undefined });
if (v['variant-nats']) await variant('async, NATS bus (nats-server on loopback)', { natsUrl: v['variant-nats'] });
if (v['variant-nats'] && v['variant-nats-processes']) {
  await variant('async, NATS bus, sandbox and user simulator in their own processes', { natsUrl: v['variant-nats'], actorProcesses: true });
}

const f = (x: number, d = 2) => x.toFixed(d);
const main = rows
  .map(([name, x]) => `| ${name} | ${x.tasks_published} | ${x.trajectories_received} | ${x.duplicates_dropped} | ${x.lost} | ${x.workers_killed} | ${f(x.achieved_tokens_per_s, 0)} | ${f(x.efficiency, 3)} | ${f(x.steady_state_efficiency, 3)} | ${f(x.goodput_efficiency, 3)} | ${f(x.p50_turn_overhead_ms)} | ${f(x.p99_turn_overhead_ms)} | ${f(x.wall_s, 1)} |`)
  .join('\n');
const parts = rows
  .map(([name, x]) => {
    const b = x.turn_overhead_mean_breakdown_ms;
    return `| ${name} | ${f(x.turn_overhead_mean_ms)} | ${f(b.tool)} | ${f(b.user)} | ${f(b.policy_call)} | ${f(b.notify_lag)} | ${f(b.driver)} | ${f(x.worker_publish_ms_per_episode)} | ${f(x.process_cpu_per_wall_s)} | ${f(x.event_loop_delay_p99_ms, 1)} | ${x.gc_scavenges} | ${f(x.gc_scavenge_ms, 0)} | ${f(x.load_average_1m)} |`;
  })
  .join('\n');
const body = `
Simulated continuous-batching server: ${o.capacityTokensPerS} tokens/s shared, ${o.maxSequenceTokensPerS} tokens/s per sequence (so ≥ ${Math.ceil(o.capacityTokensPerS / o.maxSequenceTokensPerS)} concurrent sequences saturate it), log-normal reply lengths (median 40, σ 1), geometric extra turns; τ² retail sandbox and the scripted user reached by request-reply over the bus; ${o.workers} workers × ${o.concurrency} episodes; a worker crashed every ${o.killWorkerEvery} trajectories (its in-flight episodes stop at once, their tasks are redelivered after a 2 s ack wait). Per episode the worker makes two sandbox calls besides the tool calls (OpenSession, which also forks the group's base, and Evaluate, which also closes the session) and starts the user simulator while the sandbox opens. One process on this machine runs the bus client, the workers, the simulated server and the trajectory consumer; the sandbox and the user simulator run in it too, except in the run marked "in their own processes", where \`parley serve sandbox --nats\` and \`parley serve usersim --nats\` serve them (the cluster's topology; nats-server, the bench and the two servers then share this machine's 2 cores).

| run | published | received | duplicates dropped | lost | workers killed | achieved tokens/s | efficiency (whole run) | steady-state efficiency | goodput | p50 turn overhead ms | p99 turn overhead ms | wall s |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
${main}

Async efficiency / synchronous efficiency (whole runs): **${f(r.async_over_sync_efficiency!)}×**.

* **efficiency (whole run)**: tokens the server decoded / (capacity × wall time from the first task published to the last trajectory received); it includes the ramp-up, crash redeliveries and the final drain, when the last long episodes finish one by one on a mostly idle server (in the async run above the drain was ${f(100 * (1 - r.steady_state_s / r.wall_s), 0)}% of the wall time: episode lengths are heavy-tailed, and the drain does not shrink with more concurrency, only its share with more tasks).
* **steady-state efficiency**: the same ratio up to the moment the last episode began, i.e. while queued work could still replace a finished episode (a run that keeps publishing tasks never drains). Reported beside the whole-run figure, not instead of it.
* **goodput**: sampled tokens of the trajectories received / (capacity × wall): work thrown away by crashed workers is not counted.
* **turn overhead**: per episode, (wall time from opening its session to closing it − the time the server spent generating its turns, arrival to last token on the server's clock) / policy turns. It counts the sandbox and user-simulator calls, bus hops, the driver, and the time from a generation's last token until the episode resumes. The simulated server polls its clock in the last millisecond before a completion, so that delay is the event loop being busy, not timer granularity.

Mean turn overhead and what it is made of (ms per turn), and the process's load:

| run | mean | sandbox calls | user calls | policy call (client side) | last token → resumed | driver | publish per episode | CPU s per wall s | event-loop delay p99 ms | scavenges | scavenge pause ms | load average |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
${parts}

Sandbox calls include the per-episode OpenSession and Evaluate; "publish per episode" is the worker's time outside the episode (trajectory encoding, publish, ack). The machine is shared: other sessions' jobs ran beside these (load average above), which stretches latencies.
`;
process.stdout.write(body);
const cmd = [
  process.env.NODE_OPTIONS ? `NODE_OPTIONS='${process.env.NODE_OPTIONS}' ` : '',
  `npx tsx bench/rollout/bench.ts --tasks ${o.tasks} --group ${o.group} --workers ${o.workers} --concurrency ${o.concurrency} --kill-worker-every ${o.killWorkerEvery}`,
  v['variant-concurrency'] ? ` --variant-concurrency ${v['variant-concurrency']}` : '',
  v['variant-direct'] ? ' --variant-direct' : '',
  v['variant-nats'] ? ` --variant-nats ${v['variant-nats']}` : '',
  v['variant-nats-processes'] ? ' --variant-nats-processes' : '',
  v.section !== 'Rollout pipeline' ? ` --section '${v.section}'` : '',
].join('');
writeResultsSection(v.section!, cmd, body);
