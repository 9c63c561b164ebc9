// Spawns the Python trainer engine (`python3 -m parley_engine serve`) beside the learner, waits until
// it is healthy, and makes sure it dies with the learner, even when the learner is SIGKILLed.

import { watchdogArgs } from '../core/watchdog.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ParleyError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { waitForTrainerHealthy } from './trainer-client.js';

/** The engine's Python package folder (holds parley_engine/). */
export const ENGINE_DIR = fileURLToPath(new URL('./engine', import.meta.url));

/** The project's engine environment (scripts/setup-engine-env.sh makes it: torch 2.x, transformers, peft). */
export const ENGINE_VENV_PYTHON = fileURLToPath(new URL('../../.venv-engine/bin/python', import.meta.url));

/**
 * The interpreter: the option, else PARLEY_PYTHON, else the project's .venv-engine when it exists, else
 * /usr/bin/python3 (Debian's python3-torch: the builtin model only).
 */
export function enginePython(python?: string): string {
  return python || process.env.PARLEY_PYTHON || (existsSync(ENGINE_VENV_PYTHON) ? ENGINE_VENV_PYTHON : '/usr/bin/python3');
}

export interface EngineProcessOptions {
  python?: string;
  host?: string;
  /** 0 (default) lets the engine pick a free port and report it. */
  port?: number;
  logger?: Logger;
  /** How long the engine may take to listen and report healthy (ms, default 120 000). */
  startTimeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

export interface EngineProcess {
  /** host:port of its Trainer service. */
  address: string;
  port: number;
  pid: number;
  /** Resolves when the engine exits. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM (graceful: in-flight calls finish), then SIGKILL after `graceMs` (default 15 000). Safe to call twice. */
  stop(graceMs?: number): Promise<void>;
}

// The engine runs under core's watchdog shell: it stops when our stdin pipe closes (stop(), or the
// learner dying by SIGKILL).

function pythonEnv(env: NodeJS.ProcessEnv | undefined): NodeJS.ProcessEnv {
  const base = { ...process.env, ...env };
  return { ...base, PYTHONPATH: base.PYTHONPATH ? `${ENGINE_DIR}:${base.PYTHONPATH}` : ENGINE_DIR, PYTHONUNBUFFERED: '1' };
}

const LEVELS: Record<number, 'debug' | 'info' | 'warn' | 'error'> = { 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'error' };

/** Passes the engine's JSON log lines (pino-shaped) to `logger` at their level; other lines as warnings. */
function relayLogs(logger: Logger, text: string): void {
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const doc = JSON.parse(line) as { level?: number; msg?: string; err?: string };
      logger[LEVELS[doc.level ?? 30] ?? 'info']({ component: 'trainer-engine', err: doc.err }, doc.msg ?? line);
    } catch {
      logger.warn({ component: 'trainer-engine' }, line);
    }
  }
}

/**
 * Starts the engine and resolves once it listens and grpc.health.v1 says SERVING. Rejects with
 * ParleyError: failed_precondition when the interpreter is missing or lacks PyTorch/grpcio (the
 * message says what to install or set), unavailable when it exits early or is not healthy within
 * startTimeoutMs (the engine is killed; its last stderr lines are in the message).
 */
export async function startEngineProcess(opts: EngineProcessOptions = {}): Promise<EngineProcess> {
  const python = enginePython(opts.python);
  const host = opts.host ?? '127.0.0.1';
  const timeoutMs = opts.startTimeoutMs ?? 120_000;
  const args = watchdogArgs(python, ['-m', 'parley_engine', 'serve', '--host', host, '--port', String(opts.port ?? 0)]);
  const child: ChildProcess = spawn('/bin/sh', args, { env: pythonEnv(opts.env), stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  let stderrTail = '';
  child.stderr!.on('data', (b: Buffer) => {
    const text = b.toString();
    stderrTail = (stderrTail + text).slice(-4000);
    if (opts.logger) relayLogs(opts.logger, text);
    else process.stderr.write(text);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const killGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, signal);
    } catch {
      // already gone
    }
  };
  const port = await new Promise<number>((resolve, reject) => {
    let settled = false;
    let buffered = '';
    const timer = setTimeout(() => fail(new ParleyError('unavailable', `the trainer engine did not start listening within ${timeoutMs} ms${tail()}`)), timeoutMs);
    const tail = () => (stderrTail.trim() ? `; its stderr ends: ${stderrTail.trim().split('\n').slice(-3).join(' | ')}` : '');
    const fail = (e: ParleyError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      killGroup('SIGKILL');
      reject(e);
    };
    child.stdout!.on('data', (b: Buffer) => {
      buffered += b.toString();
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        try {
          const msg = JSON.parse(line) as { event?: string; port?: number };
          if (msg.event === 'listening' && typeof msg.port === 'number' && !settled) {
            settled = true;
            clearTimeout(timer);
            resolve(msg.port);
          }
        } catch {
          if (line) opts.logger?.debug({ line }, 'engine stdout');
        }
      }
    });
    void exited.then(({ code, signal }) => {
      if (code === 2 || code === 127) {
        fail(new ParleyError('failed_precondition', `the trainer engine cannot run with ${python}${tail()}; run scripts/setup-engine-env.sh (the project's .venv-engine), install python3-torch and python3-grpcio (Debian), or set PARLEY_PYTHON to an interpreter that has PyTorch`));
      } else {
        fail(new ParleyError('unavailable', `the trainer engine exited (code ${code}, signal ${signal}) before listening${tail()}`));
      }
    });
  });
  const address = `${host}:${port}`;
  try {
    await waitForTrainerHealthy(address, timeoutMs);
  } catch (e) {
    killGroup('SIGKILL');
    throw e;
  }
  opts.logger?.info({ address, pid: child.pid, python }, 'trainer engine started');
  let stopping: Promise<void> | undefined;
  return {
    address,
    port,
    pid: child.pid!,
    exited,
    stop: (graceMs = 15_000) =>
      (stopping ??= (async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.stdin!.end(); // the watchdog sends SIGTERM to the engine
        const timer = setTimeout(() => killGroup('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      })()),
  };
}

/**
 * Runs the engine in the foreground (for `parley engine serve`): its output goes to ours, SIGTERM
 * and SIGINT are passed on. Resolves with its exit code (2 when PyTorch or grpcio is missing).
 */
export function runEngineForeground(opts: { python?: string; host?: string; port: number; logLevel?: string }): Promise<number> {
  const args = watchdogArgs(enginePython(opts.python), ['-m', 'parley_engine', 'serve', '--host', opts.host ?? '127.0.0.1', '--port', String(opts.port)]);
  if (opts.logLevel) args.push('--log-level', opts.logLevel);
  // Through the watchdog: closing its stdin is how the engine is told to stop, and what stops it when we die.
  const child = spawn('/bin/sh', args, { env: pythonEnv(undefined), stdio: ['pipe', 'inherit', 'inherit'] });
  const forward = () => child.stdin!.end();
  process.on('SIGTERM', forward);
  process.on('SIGINT', forward);
  return new Promise((resolve, reject) => {
    child.once('error', (e) =>
      reject(new ParleyError('failed_precondition', `cannot run ${enginePython(opts.python)}: ${e.message}; set PARLEY_PYTHON or --python`, { cause: e })),
    );
    child.once('exit', (code, signal) => {
      process.off('SIGTERM', forward);
      process.off('SIGINT', forward);
      if (code === 127) process.stderr.write(`cannot run ${enginePython(opts.python)}; set PARLEY_PYTHON or --python\n`);
      resolve(code ?? (signal ? 128 : 1));
    });
  });
}
