// `parley serve coordinator`: the run coordinator as a process (the controller runs one per TrainingRun).
// The CLI's main registers it; this file only defines it.

import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { ParleyError } from '../../core/errors.js';
import { onShutdown } from '../../core/lifecycle.js';
import { createLogger } from '../../core/logger.js';
import { serveCoordinator } from './serve.js';

/**
 * Reads coordinator settings from a YAML or JSON file (config field names, see config.ts). Throws
 * ParleyError(invalid_argument) naming the file when it cannot be read or is not a mapping.
 */
export function readCoordinatorConfigFile(path: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = parseYaml(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new ParleyError('invalid_argument', `--config: cannot read ${path}: ${(e as Error).message}`, { field: 'config', cause: e });
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    throw new ParleyError('invalid_argument', `--config: ${path} must hold a mapping of coordinator settings`, { field: 'config' });
  }
  return value as Record<string, unknown>;
}

/** Adds `coordinator` under the `serve` command: runs until SIGTERM/SIGINT, then finishes the top-up in flight and exits. */
export function registerCoordinatorServeCommand(serve: Command): void {
  serve
    .command('coordinator')
    .description("Run a run's coordinator: keeps the rollout task queue topped up for the learner's step until the run's steps are done, and runs the held-out evaluations of the config's evaluation block")
    .option('--config <file>', 'coordinator settings as YAML or JSON (flags override it; the controller mounts coordinator.yaml)')
    .option('--run <name>', 'run name: tasks go to parley.<run>.tasks (env PARLEY_RUN)')
    .option('--domain <name>', 'sandbox domain of the tasks')
    .option('--train-split <name>', 'split whose tasks are drawn (default train; empty: all tasks)')
    .option('--group-size <n>', 'samples per task (default 8)')
    .option('--groups-per-step <n>', 'groups per learner step (default 16)')
    .option('--steps <n>', 'learner steps of the run; nothing is published after them (default 200; 0: no limit)')
    .option('--seed <n>', 'run seed: task order and sampling seeds (default 0)')
    .option('--mode <mode>', 'mua or tau2 (default mua)')
    .option('--poll-interval-ms <n>', 'how often the queue and the learner step are read (default 1000)')
    .option('--bus-url <url>', 'nats://host:port (env PARLEY_BUS_URL)')
    .option('--sandbox <where>', "'nats' or a Sandbox gRPC host:port, for listing the tasks and evaluation episodes (default nats)")
    .option('--usersim <where>', "'nats' or a UserSimulator gRPC host:port, for evaluation episodes (default nats)")
    .option('--policy <where>', "'nats' or a Policy gRPC host:port, for evaluation episodes (default nats)")
    .option('--host <host>', 'listen address of /metrics, /healthz, /readyz (default 0.0.0.0)')
    .option('--metrics-port <n>', 'port of /metrics, /healthz, /readyz (default 9464; -1 = off)')
    .action(async (opts: Record<string, string | undefined>) => {
      const { config, ...flags } = opts;
      const logger = createLogger('coordinator');
      const running = await serveCoordinator({ ...(config ? readCoordinatorConfigFile(config) : {}), ...flags }, logger);
      onShutdown(logger, [() => running.close()]);
      const c = running.config.coordinator;
      process.stderr.write(
        `coordinator for run '${c.run}' publishing from group ${running.coordinator.status().nextGroup}` +
          (running.metrics ? `, metrics on :${running.metrics.port}/metrics` : '') +
          '; Ctrl-C to stop\n',
      );
    });
}
