// The Sandbox under hostile input over real gRPC: work, size and nesting budgets answer at once with a
// precise error, and no session can stall or crowd out the others.

import { afterAll, beforeAll, expect, it } from 'vitest';
import { Sandbox } from '../services/core/gen/parley/v1/sandbox_pb.js';
import { createGrpcClient, type ClientOf } from '../services/core/grpc.js';
import { serveSandbox, type RunningSandbox } from '../services/sandbox/index.js';
import { describeTau2, tau2DataDir } from './fixtures/tau2-data.js';

type Client = ClientOf<typeof Sandbox>;

describeTau2('retail', 'sandbox limits over gRPC', () => {
  let sb: RunningSandbox;
  let client: Client;

  beforeAll(async () => {
    sb = await serveSandbox({ port: 0, host: '127.0.0.1', metricsPort: -1, dataDir: tau2DataDir(), domains: ['retail'] });
    client = createGrpcClient(Sandbox, `127.0.0.1:${sb.grpc.port}`);
  });
  afterAll(async () => {
    client?.close();
    await sb?.close();
  });

  const calc = (sessionId: string, expression: string) =>
    client.call({ sessionId, toolName: 'calculate', argumentsJson: JSON.stringify({ expression }), callId: '' });

  it("answers calculate's 175-byte power bomb with a tool error, and other sessions go on", async () => {
    const a = await client.openSession({ domain: 'retail' });
    const b = await client.openSession({ domain: 'retail' });
    const bomb = Array(16).fill('9**4000000').join('+');
    const [bombed, other] = await Promise.all([calc(a.sessionId, bomb), calc(b.sessionId, '(12.5 + 3) * 2')]);
    expect(bombed).toMatchObject({ output: 'Error: calculation too large: an intermediate result would exceed 65536 bits', error: true });
    expect(other).toMatchObject({ output: '31.0', error: false });
    expect(await calc(a.sessionId, '466.75 + 288.82 + 135.24 + 193.38 + 46.66')).toMatchObject({ output: '1130.85', error: false });
  });
});
