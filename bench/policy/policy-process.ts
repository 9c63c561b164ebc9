// Benchmark helper process: runs the Policy service against a given backend URL and prints its port.

import { Registry, createLogger } from '../../services/core/index.js';
import { servePolicy } from '../../services/policy/index.js';
import { QWEN3_MODEL_DIR } from '../../test/fixtures/vllm-double.js';

const [backendUrl, driftCheckRate] = process.argv.slice(2);
const running = await servePolicy({
  config: { modelDir: QWEN3_MODEL_DIR, backendUrl, modelName: 'Qwen/Qwen3-8B', host: '127.0.0.1', port: 0, metricsPort: 0, driftCheckRate },
  env: {},
  registry: new Registry(),
  logger: createLogger('policy-bench', 'warn'),
});
process.stdout.write(JSON.stringify({ port: running.port }) + '\n');
process.on('SIGTERM', () => void running.close().then(() => process.exit(0)));
