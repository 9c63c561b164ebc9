// Benchmark (`npx tsx bench/policy/bench.ts`): Policy service overhead per Generate call against posting the
// same token-id prompts to the vLLM test double directly; writes `Policy service overhead` in bench/RESULTS.md.

import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { create } from '@bufbuild/protobuf';
import { ChatMessageSchema, Role, type ChatMessage } from '../../services/core/gen/parley/v1/chat_pb.js';
import { Policy } from '../../services/core/gen/parley/v1/policy_pb.js';
import { createGrpcClient } from '../../services/core/index.js';
import { writeResultsSection } from '../results.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const TURNS = 8;
const CONCURRENCY = [1, 64];
const SAMPLING = { temperature: 1, topP: 1, maxTokens: 256 };

const tools = ['get_order_details', 'get_user_details', 'cancel_pending_order'].map((name) => ({
  name,
  description: `The ${name.replace(/_/g, ' ')} tool of a retail domain: reads or changes the order database.`,
  parametersJson: JSON.stringify({ type: 'object', properties: { order_id: { type: 'string', description: 'like #W0000000' }, reason: { type: 'string' } }, required: ['order_id'] }),
}));
const SYSTEM = 'You are a customer service agent for an online retail store. '.repeat(12);

function startChild(file: string, args: string[]): Promise<{ child: ChildProcess; info: Record<string, unknown> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(HERE, file), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${file} exited with ${code}`)));
    createInterface({ input: child.stdout! }).once('line', (line) => resolve({ child, info: JSON.parse(line) as Record<string, unknown> }));
  });
}

interface Stats {
  calls: number;
  mean: number;
  p50: number;
  p99: number;
  perSecond: number;
}

function stats(latencies: number[], wallMs: number): Stats {
  const s = [...latencies].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  return { calls: s.length, mean: s.reduce((a, b) => a + b, 0) / s.length, p50: q(0.5), p99: q(0.99), perSecond: (s.length / wallMs) * 1000 };
}

/** Runs `sessions` conversations of TURNS Generate calls through the policy; returns latencies and the prompts sent. */
async function runPolicy(address: string, sessions: number, rounds: number, tag: string): Promise<{ stats: Stats; prompts: number[][][] }> {
  const client = createGrpcClient(Policy, address);
  const latencies: number[] = [];
  const prompts: number[][][] = [];
  const started = performance.now();
  const session = async (s: number) => {
    const messages: ChatMessage[] = [
      create(ChatMessageSchema, { role: Role.SYSTEM, content: SYSTEM }),
      create(ChatMessageSchema, { role: Role.USER, content: `Hi, where is my order #W${1000 + s}?` }),
    ];
    const mine: number[][] = (prompts[s] = []);
    for (let t = 0; t < TURNS; t++) {
      const t0 = performance.now();
      const r = await client.generate({ conversationId: `${tag}-${s}`, messages, tools, sampling: SAMPLING });
      latencies.push(performance.now() - t0);
      mine.push(r.promptTokenIds);
      messages.push(r.message!, create(ChatMessageSchema, { role: Role.USER, content: `Thanks. One more question, number ${t}: can you check it again?` }));
    }
  };
  for (let round = 0; round < rounds; round++) {
    await Promise.all(Array.from({ length: sessions }, (_, i) => session(round * sessions + i)));
  }
  const wall = performance.now() - started;
  client.close();
  return { stats: stats(latencies, wall), prompts };
}

/** Replays the same prompts straight to the backend, `sessions` at a time, with the policy's request body. */
async function runDirect(url: string, prompts: number[][][], sessions: number): Promise<Stats> {
  const latencies: number[] = [];
  const started = performance.now();
  const replay = async (session: number[][]) => {
    for (const prompt of session) {
      const t0 = performance.now();
      const res = await fetch(`${url}/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ model: 'Qwen/Qwen3-8B', prompt, max_tokens: SAMPLING.maxTokens, temperature: 1, top_p: 1, n: 1, stream: false, logprobs: 0, return_token_ids: true, return_tokens_as_token_ids: true }),
      });
      const json = (await res.json()) as { choices?: { token_ids?: number[] }[] };
      if (!json.choices?.[0]?.token_ids) throw new Error('direct call got no token ids');
      latencies.push(performance.now() - t0);
    }
  };
  for (let round = 0; round * sessions < prompts.length; round++) {
    await Promise.all(prompts.slice(round * sessions, (round + 1) * sessions).map(replay));
  }
  return stats(latencies, performance.now() - started);
}

const fmt = (x: number) => x.toFixed(2);

/** CPU seconds (user + system) a child has used so far, from /proc (Linux); NaN elsewhere. */
function cpuSeconds(child: ChildProcess): number {
  try {
    const fields = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return NaN;
  }
}

async function main(): Promise<void> {
  const children: ChildProcess[] = [];
  const rows: string[] = [];
  try {
    for (const latency of [0, 50]) {
      const { child: dbl, info } = await startChild('double-process.ts', [String(latency)]);
      children.push(dbl);
      const url = String(info.url);
      for (const drift of latency === 0 ? ['1', '0'] : ['1']) {
        const { child: pol, info: pinfo } = await startChild('policy-process.ts', [url, drift]);
        children.push(pol);
        const address = `127.0.0.1:${String(pinfo.port)}`;
        const warm = await runPolicy(address, 16, 2, `warm-${latency}-${drift}`);
        await runDirect(url, warm.prompts, 16);
        for (const c of CONCURRENCY) {
          const rounds = c === 1 ? 16 : 1;
          const cpu0 = cpuSeconds(pol);
          const policy = await runPolicy(address, c, rounds, `run-${latency}-${drift}-${c}`);
          const policyCpuMs = ((cpuSeconds(pol) - cpu0) * 1000) / policy.stats.calls;
          const direct = await runDirect(url, policy.prompts, c);
          const promptTokens = Math.round(policy.prompts.flat().reduce((n, p) => n + p.length, 0) / policy.stats.calls);
          rows.push(
            `| ${latency} | ${drift === '1' ? 'on' : 'off'} | ${c} | ${policy.stats.calls} | ${promptTokens} | ${fmt(policy.stats.mean)} / ${fmt(policy.stats.p50)} / ${fmt(policy.stats.p99)} | ` +
              `${fmt(direct.mean)} / ${fmt(direct.p50)} / ${fmt(direct.p99)} | **${(policy.stats.mean / direct.mean).toFixed(2)}×** | ${fmt(policy.stats.mean - direct.mean)} | ` +
              `${fmt(policyCpuMs)} | ${policy.stats.perSecond.toFixed(0)} / ${direct.perSecond.toFixed(0)} |`,
          );
          process.stderr.write(`latency ${latency} ms, drift ${drift}, ${c} sessions: done\n`);
        }
        pol.kill('SIGTERM');
      }
      dbl.kill('SIGTERM');
    }
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  }
  const body = [
    `Each session is a ${TURNS}-turn conversation (system prompt, 3 tool schemas, a user turn per turn; the double answers a fixed`,
    '~25-token reply); "1 session" runs 16 of them one after another. "policy" is a gRPC Generate through the Policy service (its own process) to the vLLM test double (another',
    'process); "direct" posts the very same token-id prompts to the double. Latencies in ms (mean / p50 / p99); the ratio is',
    'mean policy / mean direct; overhead is their difference per call. "model ms" is the latency the double adds per completion',
    '(a real decode takes far longer, so the 0 ms rows bound the overhead from above). "drift" is the full re-render check.',
    '"policy CPU" is the Policy process\'s own CPU time per call (from /proc): on a small machine the three processes share the',
    'cores, so at 64 sessions the wall-clock ratio mostly shows CPU contention; the CPU column is the cost that scales.',
    '',
    '| model ms | drift | sessions | calls | prompt tokens (mean) | policy ms | direct ms | ratio | overhead ms/call | policy CPU ms/call | calls/s policy / direct |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...rows,
  ].join('\n');
  process.stdout.write(`## Policy service overhead\n\n${body}\n`);
  writeResultsSection('Policy service overhead', 'npx tsx bench/policy/bench.ts', body);
}

main().catch((e: unknown) => {
  process.stderr.write(`policy benchmark failed: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
