// One request-reply hop, by how long the caller was idle before it: a bare nats.js echo (no Parley code),
// the sandbox's Call through Parley's RPC layer over the same nats-server, and over the in-process bus.
// A rollout episode calls the sandbox or the user simulator once per turn, after waiting for a generation
// (tens to hundreds of ms), so its hops are the idle kind; this separates what the machine charges for
// waking nats-server and the caller from what Parley's layers add.
// Run: npx tsx bench/rollout/nats-hop.ts --nats nats://127.0.0.1:4222 [--calls 400]

import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { connect } from 'nats';
import { connectBus } from '../../services/core/bus/index.js';
import { createBusClient, serveOverBus } from '../../services/core/bus-rpc.js';
import { Sandbox } from '../../services/core/gen/parley/v1/sandbox_pb.js';
import { Registry } from '../../services/core/metrics.js';
import { resolveSandboxConfig } from '../../services/sandbox/config.js';
import { loadDomains, SandboxService } from '../../services/sandbox/service.js';
import { percentile, writeResultsSection } from '../results.js';

const { values: v } = parseArgs({
  options: {
    nats: { type: 'string' },
    calls: { type: 'string', default: '400' },
    'data-dir': { type: 'string', default: process.env.PARLEY_TAU2_DATA ?? '../shared/data/tau2' },
  },
});
if (!v.nats) {
  process.stderr.write('nats-hop: --nats <url> is required (start one with: nats-server -js -p 4222)\n');
  process.exit(2);
}
const calls = Number(v.calls);
if (!Number.isInteger(calls) || calls < 10) throw new Error(`--calls: expected an integer ≥ 10, got ${v.calls}`);
const GAPS_MS = [0, 1, 5, 20];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** p50 and p90 of `calls` sequential hops, each after `gapMs` idle (0: back to back). A hop that answers a
 * number has timed itself (leaving out its untimed set-up). */
async function measure(hop: () => Promise<unknown>, gapMs: number): Promise<[number, number]> {
  for (let i = 0; i < 300; i++) await hop(); // warm (the JIT compiles the longer paths late)
  const xs: number[] = [];
  // Fewer calls at the long gaps: their figures settle sooner and the run stays short.
  const n = gapMs >= 20 ? Math.max(10, calls >> 2) : calls;
  for (let i = 0; i < n; i++) {
    if (gapMs > 0) await sleep(gapMs);
    const t = performance.now();
    const took = await hop();
    xs.push(typeof took === 'number' ? took : performance.now() - t);
  }
  return [percentile(xs, 50), percentile(xs, 90)];
}

const dataDir = resolve(v['data-dir']!);
const sbConfig = resolveSandboxConfig({ dataDir, domains: ['retail'], metricsPort: -1, maxSessions: 100_000 });
const sandbox = new SandboxService(sbConfig, loadDomains(sbConfig), new Registry());

// A bare echo: nats.js request() to a subscription that answers the same bytes.
const nc = await connect({ servers: v.nats });
nc.subscribe('parley-bench.hop.echo', { callback: (_e, m) => m.respond(m.data) });
await nc.flush();
const payload = new Uint8Array(120); // about a Call request
const bare = () => nc.request('parley-bench.hop.echo', payload, { timeout: 5_000 });

// The sandbox's Call through Parley's RPC layer, served and called in this process.
async function sandboxHop(url: string | undefined) {
  const bus = await connectBus(url);
  const run = `hop-${Date.now().toString(36)}`;
  const server = await serveOverBus(bus, Sandbox, sandbox.impl, { run });
  const client = createBusClient(bus, Sandbox, { run });
  let sessionId = '';
  let made = 0;
  const hop = async () => {
    // A session allows 200 calls: a fresh one every 150 (its open is not timed).
    if (made++ % 150 === 0) sessionId = (await client.openSession({ domain: 'retail', taskId: '', sessionId: '' })).sessionId;
    const t = performance.now();
    await client.call({ sessionId, toolName: 'get_user_details', argumentsJson: '{"user_id": "yusuf_rossi_9620"}', callId: 'c' });
    return performance.now() - t;
  };
  return { hop, close: async () => (await server.close(), await bus.close()) };
}

const BARE = 'bare nats.js echo';
const OURS = 'sandbox Call, Parley RPC over NATS';
const MEMORY = 'sandbox Call, Parley RPC over the in-process bus';
const nats = await sandboxHop(v.nats);
const memory = await sandboxHop(undefined);
const variants: [string, () => Promise<unknown>][] = [
  [BARE, bare],
  [OURS, nats.hop],
  [MEMORY, memory.hop],
];
// Gap by gap, every variant in turn, so that the machine's drift during the run hits all three alike.
const results = new Map<string, [number, number][]>(variants.map(([name]) => [name, []]));
for (const gap of GAPS_MS) {
  process.stderr.write(`nats-hop: ${gap} ms idle before each call…\n`);
  for (const [name, hop] of variants) results.get(name)!.push(await measure(hop, gap));
}
await nats.close();
await memory.close();
await nc.close();
sandbox.stop();

const rows = variants.map(([name]) => `| ${name} | ${results.get(name)!.map(([p50, p90]) => `${p50.toFixed(3)} / ${p90.toFixed(3)}`).join(' | ')} |`);
/** p50 of a variant back to back and after the longest idle gap. */
const busyIdle = (name: string) => [results.get(name)![0]![0], results.get(name)![GAPS_MS.length - 1]![0]] as const;
const [bareBusy, bareIdle] = busyIdle(BARE);
const [oursBusy, oursIdle] = busyIdle(OURS);
const [memBusy, memIdle] = busyIdle(MEMORY);
const body = `
Sequential request-reply hops, p50 / p90 in ms, by the caller's idle time before each call. The sandbox and the caller share one process and one NATS connection, as in the rollout bench's NATS run.

| hop | back to back | 1 ms idle | 5 ms idle | 20 ms idle |
| --- | ---: | ---: | ---: | ---: |
${rows.join('\n')}

After 20 ms idle a bare nats.js hop costs ${(bareIdle / bareBusy).toFixed(1)}× what it costs back to back (${bareIdle.toFixed(3)} against ${bareBusy.toFixed(3)} ms p50): that is nats-server and the caller waking up, which this machine (a VM) charges for. Even the in-process bus, with no I/O at all, takes ${(memIdle / memBusy).toFixed(0)}× longer after 20 ms idle (${memIdle.toFixed(3)} against ${memBusy.toFixed(3)} ms): part of the cost is the caller's own CPU coming back (cold caches, a rescheduled vCPU). Parley's RPC layer (protobuf, deadline and status headers, the sandbox's handler) adds ${(oursBusy - bareBusy).toFixed(3)} ms back to back and ${(oursIdle - bareIdle).toFixed(3)} ms after 20 ms idle. An episode calls after each generation, and the rollout bench's NATS run makes about a hundred calls a second in all, so its calls mostly follow a few ms of quiet: the 5 ms and 20 ms columns are the ones that apply there.
`;
process.stdout.write(body);
writeResultsSection('NATS request-reply hop', `npx tsx bench/rollout/nats-hop.ts --nats ${v.nats} --calls ${calls}`, body);
