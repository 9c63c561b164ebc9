// Sandbox benchmark: tool calls per second (in-process and over gRPC at 1 and 16 concurrent sessions)
// session open/fork latency (copy-on-write against a deep copy of the DB), and Evaluate's DB check (comparing
// the episode's state with the gold one against hashing both), on τ² retail.
// Run: npx tsx bench/sandbox/bench.ts [--data-dir ../shared/data/tau2] [--seconds 3]

import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Sandbox } from '../../services/core/gen/parley/v1/sandbox_pb.js';
import { createGrpcClient } from '../../services/core/grpc.js';
import { evaluateEpisode, goldHashes, goldState, type GoldCache } from '../../services/sandbox/evaluate.js';
import { Environment, loadDomain, parsePyJson, serveSandbox, type Tau2Task } from '../../services/sandbox/index.js';
import { loadTasks } from '../../services/sandbox/tasks.js';
import { percentile, writeResultsSection } from '../results.js';

const { values } = parseArgs({ options: { 'data-dir': { type: 'string' }, seconds: { type: 'string' } } });
const dataDir = resolve(values['data-dir'] ?? process.env.PARLEY_TAU2_DATA ?? '../shared/data/tau2');
const seconds = Number(values.seconds ?? 3);

interface Action { name: string; arguments: Record<string, unknown> }
const oracle = parsePyJson(readFileSync(join(dataDir, 'retail', 'gold_replay_reference.json'), 'utf8')) as { tasks: { gold_actions: Action[] }[] };
const episodes = oracle.tasks.map((t) => t.gold_actions).filter((a) => a.length > 0);
const domain = loadDomain('retail', join(dataDir, 'retail'));

const fmt = (x: number, d = 3) => x.toFixed(d);
const progress = (msg: string) => process.stderr.write(`bench/sandbox: ${msg}\n`);

// 1. In-process tool calls: replay gold episodes on fresh sessions for `seconds`.
progress('in-process tool calls');
let calls = 0;
const t0 = performance.now();
while (performance.now() - t0 < seconds * 1000) {
  for (const ep of episodes) {
    const env = new Environment(domain);
    for (const a of ep) {
      env.call(a.name, a.arguments);
      calls++;
    }
  }
}
const inProcCallsPerS = calls / ((performance.now() - t0) / 1000);

// 2. Session open: copy-on-write vs a deep copy of the DB (what a naive sandbox does per episode).
progress('session open latency');
const openCow: number[] = [];
for (let i = 0; i < 2000; i++) {
  const s = performance.now();
  const env = new Environment(domain);
  env.fork();
  openCow.push(performance.now() - s);
}
const openClone: number[] = [];
for (let i = 0; i < 30; i++) {
  const s = performance.now();
  structuredClone(domain.initialDb);
  openClone.push(performance.now() - s);
}

// 3. Evaluate on finished episodes: solved (all gold actions: the gold state) and unsolved (the last write
// left out), with the DB hashes in the answer (as tau2 reports them) and without (omit_db_hashes, what a
// rollout worker asks for). Every episode is a fresh session; the DB check is the same in both.
progress('Evaluate');
const writeNames = new Set(domain.tools.filter((t) => t.type === 'WRITE').map((t) => t.name));
function played(task: Tau2Task, solved: boolean): Environment {
  const actions = task.evaluation_criteria?.actions ?? [];
  const last = actions.map((a) => writeNames.has(a.name)).lastIndexOf(true);
  const env = new Environment(domain);
  env.applyInitialState(task);
  actions.forEach((a, i) => {
    if (!solved && i === last) return;
    try {
      env.runFunction(a.requestor ?? 'assistant', a.name, a.arguments ?? {});
    } catch {
      // as in the gold replay
    }
  });
  return env;
}
// Tasks whose unsolved state differs from both the gold one and the initial one (a DB left as loaded is
// one cached piece, as cheap to hash as to compare), checked by hash.
const initialHash = new Environment(domain).dbHash();
const evalTasks = loadTasks(join(dataDir, 'retail', 'tasks.json')).filter((t) => {
  const h = played(t, false).dbHash();
  return h !== goldHashes(domain, t).db && h !== initialHash;
});
const goldCache: GoldCache = new Map();
for (const t of evalTasks) evaluateEpisode(played(t, true), t, [], true, goldCache); // gold states and their hashes
const evalMs: Record<string, number[]> = {};
const evalEnd = performance.now() + seconds * 1000;
for (let pass = 0; pass < 50 && performance.now() < evalEnd; pass++) {
  for (const t of evalTasks) {
    for (const solved of [true, false]) {
      for (const hashes of [true, false]) {
        const env = played(t, solved);
        const s = performance.now();
        const r = evaluateEpisode(env, t, [], true, goldCache, { hashes });
        (evalMs[`${solved ? 'solved' : 'unsolved'}, ${hashes ? 'with' : 'without'} hashes`] ??= []).push(performance.now() - s);
        if ((r.components.find((c) => c.name === 'DB')!.value === 1) !== solved) throw new Error(`task ${t.id}: the DB check disagrees with the replay`);
      }
    }
  }
}
// The gold replay of a task when its first session opens: the state only, or the state and its hashes.
const goldOnly: number[] = [];
const goldHashed: number[] = [];
for (const t of evalTasks) {
  let s = performance.now();
  goldState(domain, t);
  goldOnly.push(performance.now() - s);
  s = performance.now();
  goldHashes(domain, t);
  goldHashed.push(performance.now() - s);
}

// 4. Over gRPC: the same episodes through Call, with 1 and 16 concurrent sessions.
progress('gRPC tool calls');
const sb = await serveSandbox({ port: 0, host: '127.0.0.1', metricsPort: -1, dataDir, domains: ['retail'], maxSessions: 100_000 });
const client = createGrpcClient(Sandbox, `127.0.0.1:${sb.grpc.port}`);
async function grpcRun(concurrency: number): Promise<{ callsPerS: number; p50: number; p99: number }> {
  const lat: number[] = [];
  let n = 0;
  const until = performance.now() + seconds * 1000;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      let i = w;
      while (performance.now() < until) {
        const ep = episodes[i++ % episodes.length]!;
        const { sessionId } = await client.openSession({ domain: 'retail' });
        for (const a of ep) {
          const s = performance.now();
          await client.call({ sessionId, toolName: a.name, argumentsJson: JSON.stringify(a.arguments) });
          lat.push(performance.now() - s);
          n++;
        }
        await client.closeSession({ sessionId });
      }
    }),
  );
  return { callsPerS: n / ((performance.now() - start) / 1000), p50: percentile(lat, 50), p99: percentile(lat, 99) };
}
const g1 = await grpcRun(1);
const g16 = await grpcRun(16);

progress('gRPC open/fork latency');
const openGrpc: number[] = [];
const forkGrpc: number[] = [];
for (let i = 0; i < 300; i++) {
  let s = performance.now();
  const { sessionId } = await client.openSession({ domain: 'retail' });
  openGrpc.push(performance.now() - s);
  s = performance.now();
  const { sessionIds } = await client.forkSession({ sessionId, count: 8 });
  forkGrpc.push(performance.now() - s);
  for (const id of [sessionId, ...sessionIds]) await client.closeSession({ sessionId: id });
}
client.close();
await sb.close();

const body = `
τ² retail, gold-action episodes replayed on fresh sessions (${episodes.length} episodes, ${episodes.reduce((a, e) => a + e.length, 0)} calls per pass), ${seconds} s per measurement.

| measurement | result |
| --- | --- |
| tool calls/s, in-process | ${fmt(inProcCallsPerS, 0)} |
| tool calls/s, gRPC, 1 session at a time | ${fmt(g1.callsPerS, 0)} (p50 ${fmt(g1.p50)} ms, p99 ${fmt(g1.p99)} ms) |
| tool calls/s, gRPC, 16 concurrent sessions | ${fmt(g16.callsPerS, 0)} (p50 ${fmt(g16.p50)} ms, p99 ${fmt(g16.p99)} ms) |
| session open + fork, in-process copy-on-write | p50 ${fmt(percentile(openCow, 50), 4)} ms, p99 ${fmt(percentile(openCow, 99), 4)} ms |
| deep copy of the retail DB (naive open, for comparison) | p50 ${fmt(percentile(openClone, 50), 2)} ms |
| ratio deep copy / copy-on-write open (p50) | ${fmt(percentile(openClone, 50) / Math.max(percentile(openCow, 50), 1e-6), 0)}× |
| OpenSession over gRPC | p50 ${fmt(percentile(openGrpc, 50))} ms, p99 ${fmt(percentile(openGrpc, 99))} ms |
| ForkSession (8 copies) over gRPC | p50 ${fmt(percentile(forkGrpc, 50))} ms, p99 ${fmt(percentile(forkGrpc, 99))} ms |

Evaluate in-process on finished episodes of the ${evalTasks.length} retail tasks with two or more effective gold writes (each a fresh session; "unsolved" leaves out the last write, so its DB differs from the gold one and from the initial one):

| Evaluate | p50 ms | p99 ms | episodes |
| --- | ---: | ---: | ---: |
${Object.entries(evalMs).map(([k, xs]) => `| ${k} | ${fmt(percentile(xs, 50))} | ${fmt(percentile(xs, 99))} | ${xs.length} |`).join('\n')}
| gold replay of a task (state only) | ${fmt(percentile(goldOnly, 50))} | ${fmt(percentile(goldOnly, 99))} | ${goldOnly.length} |
| gold replay of a task with its DB hash | ${fmt(percentile(goldHashed, 50))} | ${fmt(percentile(goldHashed, 99))} | ${goldHashed.length} |

Unsolved with / without hashes (p50): ${fmt(percentile(evalMs['unsolved, with hashes']!, 50) / percentile(evalMs['unsolved, without hashes']!, 50), 1)}×. The DB check compares the episode's state with the gold one (\`sameSortedDump\`, walking only what either changed); the hashes cost a serialization and sha256 of the 1.5 MB DB where it differs from every recently hashed state.
`;
process.stdout.write(body);
writeResultsSection('Sandbox', `npx tsx bench/sandbox/bench.ts --seconds ${seconds}`, body);
