// A nats-server with JetStream for `parley run --pods` (the cluster's NATS, on loopback): a free port,
// its store in the run's output folder, stopped with the run.

import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdirSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { ParleyError } from '../../core/errors.js';

export interface LocalNats {
  url: string;
  host: string;
  port: number;
  stop(): Promise<void>;
}

/** The binary: NATS_SERVER_BIN, else /usr/sbin/nats-server (Debian's package). */
export function natsServerBinary(): string {
  return process.env.NATS_SERVER_BIN ?? '/usr/sbin/nats-server';
}

/** A port free on `host` now (the OS picks it). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/** Whether a TCP connection to host:port succeeds now. */
export function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const s = createConnection({ host, port }, () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/**
 * Starts nats-server -js on `host` with its store in `storeDir`; resolves once it accepts connections.
 * Rejects with ParleyError(failed_precondition) when the binary is missing (naming the package), or
 * unavailable when it does not come up within 15 s.
 */
export async function startLocalNats(storeDir: string, host = '127.0.0.1'): Promise<LocalNats> {
  const bin = natsServerBinary();
  try {
    accessSync(bin, constants.X_OK);
  } catch {
    throw new ParleyError('failed_precondition', `nats-server not found at ${bin}: apt-get install nats-server, set NATS_SERVER_BIN, or pass --nats URL`);
  }
  mkdirSync(storeDir, { recursive: true });
  const port = await freePort(host);
  const child: ChildProcess = spawn(bin, ['-js', '-a', host, '-p', String(port), '-sd', storeDir], { stdio: 'ignore' });
  const stopped = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const kill = () => child.kill('SIGKILL');
  process.once('exit', kill);
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new ParleyError('unavailable', `nats-server exited with ${child.exitCode} at start`);
    if (await canConnect(host, port)) break;
    if (i > 300) {
      kill();
      throw new ParleyError('unavailable', `nats-server did not accept connections on ${host}:${port} within 15 s`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: `nats://${host}:${port}`,
    host,
    port,
    stop: async () => {
      process.off('exit', kill);
      if (child.exitCode === null) child.kill('SIGTERM');
      const t = setTimeout(kill, 10_000);
      await stopped;
      clearTimeout(t);
    },
  };
}
