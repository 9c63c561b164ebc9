// Commands for the `parley` CLI: `parley engine serve` (the Python trainer engine in the foreground)
// and `parley serve learner`. The CLI's main registers them; this file only defines them.

import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { ParleyError } from '../core/errors.js';
import { onShutdown } from '../core/lifecycle.js';
import { createLogger } from '../core/logger.js';
import { runEngineForeground } from './engine-process.js';
import { serveLearner } from './serve.js';

/**
 * Reads learner settings from a YAML or JSON file (config field names, see config.ts). Throws
 * ParleyError(invalid_argument) naming the file when it cannot be read or is not a mapping.
 */
export function readLearnerConfigFile(path: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = parseYaml(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new ParleyError('invalid_argument', `--config: cannot read ${path}: ${(e as Error).message}`, { field: 'config', cause: e });
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    throw new ParleyError('invalid_argument', `--config: ${path} must hold a mapping of learner settings`, { field: 'config' });
  }
  return value as Record<string, unknown>;
}

/** Adds `engine serve` under `program`. The action sets process.exitCode to the engine's exit code (2: PyTorch missing). */
export function registerEngineCommands(program: Command): void {
  const engine = program.command('engine').description('The PyTorch trainer engine (parley.v1.Trainer)');
  engine
    .command('serve')
    .description('Run the Python trainer engine in the foreground, serving parley.v1.Trainer and grpc.health.v1')
    .option('--port <n>', 'gRPC port (0 = any free port; the chosen port is printed as JSON on stdout)', '50071')
    .option('--host <host>', 'listen address', '127.0.0.1')
    .option('--python <path>', 'Python interpreter with PyTorch (default $PARLEY_PYTHON or /usr/bin/python3)')
    .option('--log-level <level>', 'debug, info, warn or error (default $PARLEY_LOG_LEVEL or info)')
    .action(async (opts: { port: string; host: string; python?: string; logLevel?: string }) => {
      const port = Number(opts.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ParleyError('invalid_argument', `--port: '${opts.port}' is not a port (0–65535)`, { field: 'port' });
      process.exitCode = await runEngineForeground({ python: opts.python, host: opts.host, port, logLevel: opts.logLevel });
    });
}

/** Adds `learner` under the `serve` command: runs until SIGTERM/SIGINT, then finishes the step in flight and exits. */
export function registerLearnerServeCommand(serve: Command): void {
  serve
    .command('learner')
    .description('Serve the Learner: consume trajectories, train through the engine, checkpoint, publish weights')
    .option('--config <file>', 'learner settings as YAML or JSON (flags override it)')
    .option('--run <name>', 'run name: subjects live under parley.<run>.* (default "default")')
    .option('--algorithm <name>', 'grpo, dr_grpo, rloo or reinforce_pp (default grpo)')
    .option('--group-size <n>', 'samples per group when a trajectory does not say (default 8)')
    .option('--groups-per-step <n>', 'complete groups per optimizer step (default 16)')
    .option('--lr <x>', 'learning rate (default 1e-6)')
    .option('--clip-low <x>', 'PPO clip below 1 (default 0.2)')
    .option('--clip-high <x>', 'PPO clip above 1 (default 0.2)')
    .option('--kl-coef <x>', 'k3 KL coefficient (default 0.001)')
    .option('--micro-batch-tokens <n>', 'token budget per ForwardBackward (default 16384)')
    .option('--max-steps-off-policy <n>', 'staleness bound in policy versions (default 1)')
    .option('--checkpoint-dir <folder>', 'checkpoints and weights (default ./checkpoints)')
    .option('--weights-transport <kind>', 'directory or object_store (default directory)')
    .option('--model <name>', 'engine model: builtin or a Hugging Face path (default builtin)')
    .option('--engine-config-json <json>', 'engine settings as a JSON object (default {})')
    .option('--bus-url <url>', 'memory:// or nats://host:port (default memory://)')
    .option('--trainer-address <host:port>', 'a running engine; empty spawns one (default empty)')
    .option('--python <path>', 'interpreter for a spawned engine (default $PARLEY_PYTHON or /usr/bin/python3)')
    .option('--port <n>', 'gRPC port (default 50061; 0 = any free port)')
    .option('--host <host>', 'listen address (default 0.0.0.0)')
    .option('--metrics-port <n>', 'Prometheus /metrics port (default 9465; -1 = off)')
    .action(async (opts: Record<string, string | undefined>) => {
      const { config, ...flags } = opts;
      const logger = createLogger('learner');
      const running = await serveLearner({ ...(config ? readLearnerConfigFile(config) : {}), ...flags }, logger);
      onShutdown(logger, [() => running.close()]);
      const s = running.learner.status();
      process.stderr.write(
        `learner '${running.config.learner.run}' serving gRPC on ${running.config.serve.host}:${running.grpc.port}` +
          (running.metrics ? `, metrics on :${running.metrics.port}/metrics` : '') +
          ` (step ${s.step}, policy version ${s.policyVersion}); Ctrl-C to stop\n`,
      );
    });
}
