// `parley bench rollout`: the rollout pipeline against a simulated inference server (see services/rollout/bench-rollout.ts).

import { resolve } from 'node:path';
import type { Command } from 'commander';
import { runRolloutBench } from '../rollout/bench-rollout.js';
import { CliError } from './errors.js';

function int(name: string, v: string, min: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new CliError(`${name}: expected an integer ≥ ${min}, got '${v}'`);
  return n;
}

export function registerBenchCommands(program: Command): void {
  const bench = program.command('bench').description('Benchmarks');
  bench
    .command('rollout')
    .description('Rollout pipeline vs. a simulated continuous-batching server, async and batch-synchronous, with worker crashes')
    .option('--tasks <n>', 'GRPO groups (tasks) to run', '32')
    .option('--group <n>', 'samples per group', '4')
    .option('--workers <n>', 'rollout workers', '4')
    .option('--concurrency <n>', 'episodes in flight per worker', '16')
    .option('--kill-worker-every <n>', 'crash a worker after every N received trajectories (0 = never)', '0')
    .option('--out <dir>', 'output folder for report.json', 'out/bench-rollout')
    .option('--data-dir <folder>', 'the τ² retail folder, or the data root holding retail/', process.env.PARLEY_TAU2_DATA ?? '../shared/data/tau2')
    .option('--nats <url>', 'use a NATS server instead of the embedded bus')
    .option('--capacity <tokens/s>', 'simulated server decode capacity', '20000')
    .option('--max-seq-rate <tokens/s>', 'simulated per-sequence decode speed', '400')
    .option('--median-tokens <n>', 'median completion length', '60')
    .option('--ack-wait-ms <n>', 'task ack wait (redelivery delay after a crash)', '2000')
    .option('--seed <n>', 'seed', '1')
    .option('--actor-processes', 'with --nats: run the sandbox and user simulator as their own `parley serve … --nats` processes')
    .option('--no-baseline', 'skip the batch-synchronous baseline run')
    .action(async (opts: Record<string, string>) => {
      if (opts.actorProcesses && !opts.nats) throw new CliError('--actor-processes needs --nats <url>: the processes reach each other through NATS');
      const report = await runRolloutBench(
        {
          tasks: int('--tasks', opts.tasks!, 1),
          group: int('--group', opts.group!, 1),
          workers: int('--workers', opts.workers!, 1),
          concurrency: int('--concurrency', opts.concurrency!, 1),
          killWorkerEvery: int('--kill-worker-every', opts.killWorkerEvery!, 0),
          out: resolve(opts.out!),
          dataDir: resolve(opts.dataDir!),
          natsUrl: opts.nats,
          capacityTokensPerS: int('--capacity', opts.capacity!, 1),
          maxSequenceTokensPerS: int('--max-seq-rate', opts.maxSeqRate!, 1),
          medianCompletionTokens: int('--median-tokens', opts.medianTokens!, 1),
          ackWaitMs: int('--ack-wait-ms', opts.ackWaitMs!, 100),
          seed: int('--seed', opts.seed!, 0),
          actorProcesses: Boolean(opts.actorProcesses),
          syncBaseline: (opts.baseline as unknown) !== false, // commander's --no-baseline sets it false
        },
        (line) => process.stderr.write(`${line}\n`),
      );
      process.stdout.write(JSON.stringify(report, null, 2) + '\n');
    });
}

export function registerRolloutServe(serve: Command): void {
  serve
    .command('rollout')
    .description('Run a rollout worker: pulls tasks from the run\'s JetStream queue, publishes trajectories')
    .requiredOption('--run <name>', 'run name')
    .requiredOption('--nats <url>', 'NATS server URL')
    .option('--name <name>', 'worker name')
    .option('--concurrency <n>', 'episodes in flight')
    .option('--ack-wait-ms <n>', 'task ack wait in ms')
    .option('--sandbox <where>', "'nats' or a gRPC host:port")
    .option('--usersim <where>', "'nats' or a gRPC host:port")
    .option('--policy <where>', "'nats', a gRPC host:port, or 'simulated' (test double)")
    .option('--simulated-tasks <file>', 'tasks whose gold actions the simulated policy performs')
    .option('--policy-timeout-ms <n>', 'deadline of one generation (default 600000: a busy server queues requests)')
    .option('--actor-timeout-ms <n>', 'deadline of one sandbox or user-simulator call (default 60000)')
    .option('--metrics-port <n>', 'Prometheus /metrics port (-1 = off)')
    .action(async (opts: Record<string, string | undefined>) => {
      const { serveRolloutWorker } = await import('../rollout/serve.js');
      const { onShutdown } = await import('../core/lifecycle.js');
      const { createLogger } = await import('../core/logger.js');
      const logger = createLogger('rollout');
      const running = await serveRolloutWorker(opts, logger);
      process.stderr.write(`rollout worker ${running.worker.currentState} for run ${opts.run}; Ctrl-C drains and stops\n`);
      onShutdown(logger, [() => running.close()]);
      // A task stream that ends on its own (the run's streams deleted) ends the process, non-zero.
      const failure = await running.worker.ended();
      if (failure) {
        process.stderr.write(`parley: rollout worker stopped: ${failure.message}\n`);
        await running.close();
        process.exit(1);
      }
    });
}
