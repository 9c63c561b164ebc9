// Benchmark helper process: runs the vLLM test double (fixed reply, given latency) and prints its URL.

import { startVllmDouble } from '../../test/fixtures/vllm-double.js';

const latencyMs = Number(process.argv[2] ?? 0);
const reply = 'I checked your order: it was delivered on Monday. Is there anything else I can help you with today?';
const vllm = await startVllmDouble({ latencyMs, complete: () => reply });
process.stdout.write(JSON.stringify({ url: vllm.url }) + '\n');
process.on('SIGTERM', () => void vllm.close().then(() => process.exit(0)));
