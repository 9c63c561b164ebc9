// `parley sandbox replay` and `parley serve sandbox`.

import { existsSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { loadDomain, DOMAIN_NAMES } from '../sandbox/domains/index.js';
import { replayTask } from '../sandbox/replay.js';
import { serveSandbox } from '../sandbox/serve.js';
import { loadTasks } from '../sandbox/tasks.js';
import { onShutdown } from '../core/lifecycle.js';
import { createLogger } from '../core/logger.js';
import { CliError } from './errors.js';

export function registerSandboxCommands(program: Command, serve: Command): void {
  const sandbox = program.command('sandbox').description('Work with the tool sandbox');
  sandbox
    .command('replay')
    .description("Replay each task's gold actions on a fresh session; print one JSON line per task")
    .requiredOption('--domain <name>', `domain (${DOMAIN_NAMES.join(', ')})`)
    .requiredOption('--data-dir <folder>', 'the tau2 domain folder (db.json, policy.md, tasks.json)')
    .option('--tasks <file>', 'task file to replay instead of <data-dir>/tasks.json')
    .option('--task-ids <ids>', 'comma-separated task ids (default: all)')
    .option('--errors', 'also print each action\'s error flag', false)
    .action((opts: { domain: string; dataDir: string; tasks?: string; taskIds?: string; errors: boolean }) => {
      if (!DOMAIN_NAMES.includes(opts.domain)) throw new CliError(`--domain: unknown domain '${opts.domain}' (accepted: ${DOMAIN_NAMES.join(', ')})`);
      const dir = resolve(opts.dataDir);
      if (!existsSync(dir)) throw new CliError(`--data-dir: folder ${dir} does not exist`);
      const domain = loadDomain(opts.domain, dir);
      const tasksFile = opts.tasks ? resolve(opts.tasks) : join(dir, 'tasks.json');
      let tasks = loadTasks(tasksFile);
      if (opts.taskIds) {
        const wanted = opts.taskIds.split(',').map((s) => s.trim()).filter(Boolean);
        const byId = new Map(tasks.map((t) => [t.id, t]));
        const missing = wanted.filter((id) => !byId.has(id));
        if (missing.length) throw new CliError(`--task-ids: no task ${missing.map((m) => `'${m}'`).join(', ')} in ${basename(tasksFile)}`);
        tasks = wanted.map((id) => byId.get(id)!);
      }
      const started = Date.now();
      tasks.forEach((task, i) => {
        const r = replayTask(domain, task);
        const line: Record<string, unknown> = { id: r.id, final_db_hash: r.final_db_hash, outputs: r.outputs };
        if (opts.errors) line.errors = r.errors;
        process.stdout.write(JSON.stringify(line) + '\n');
        if (process.stderr.isTTY) process.stderr.write(`\rreplayed ${i + 1}/${tasks.length}`);
      });
      if (process.stderr.isTTY) process.stderr.write(`\rreplayed ${tasks.length} tasks in ${Date.now() - started} ms\n`);
    });

  serve
    .command('sandbox')
    .description('Serve the Sandbox gRPC service (with grpc.health.v1 and /metrics), and over NATS request-reply with --nats')
    .option('--port <n>', 'gRPC port (default 50051; 0 = any free port)')
    .option('--host <host>', 'listen address (default 0.0.0.0)')
    .option('--metrics-port <n>', 'Prometheus /metrics port (default 9464; -1 = off)')
    .option('--data-dir <folder>', 'root of a tau2 data checkout holding retail/, airline/, mock/ (default ../shared/data/tau2)')
    .option('--domains <names>', 'comma-separated domains to load (default retail,airline,mock)')
    .option('--max-sessions <n>', 'most open sessions')
    .option('--session-idle-ttl-ms <n>', 'idle time after which a session is closed')
    .option('--max-calls-per-session <n>', 'most tool calls per session')
    .option('--max-argument-bytes <n>', 'largest arguments_json accepted')
    .option('--nats <url>', 'also serve over NATS request-reply at this URL (env PARLEY_BUS_URL)')
    .option('--run <name>', 'run whose subjects are served over NATS, parley.<run>.rpc.Sandbox.*; required with --nats (env PARLEY_RUN)')
    .action(async (opts: Record<string, string | undefined>) => {
      const logger = createLogger('sandbox');
      const running = await serveSandbox(
        {
          port: opts.port,
          host: opts.host,
          metricsPort: opts.metricsPort,
          dataDir: opts.dataDir,
          domains: opts.domains?.split(',').map((s) => s.trim()),
          maxSessions: opts.maxSessions,
          sessionIdleTtlMs: opts.sessionIdleTtlMs,
          maxCallsPerSession: opts.maxCallsPerSession,
          maxArgumentBytes: opts.maxArgumentBytes,
          busUrl: opts.nats,
          run: opts.run,
        },
        logger,
      );
      process.stderr.write(
        `sandbox serving gRPC on ${running.config.host}:${running.grpc.port}` +
          (running.bus ? ` and over NATS in run '${running.bus.run}'` : '') +
          (running.metrics ? `, metrics on :${running.metrics.port}/metrics` : '') +
          ` (domains: ${[...running.service.domains.keys()].join(', ')}); Ctrl-C to stop\n`,
      );
      onShutdown(logger, [() => running.close()]);
    });
}
