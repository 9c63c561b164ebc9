// `parley serve controller` and `parley crd generate`: the controller's commands, registered by the CLI.

import type { Command } from 'commander';
import { stringify } from 'yaml';
import { onShutdown } from '../core/lifecycle.js';
import { createLogger } from '../core/logger.js';
import { ControllerConfigSchema } from './config.js';
import { trainingRunCrd } from './crd.js';
import { REPO_ROOT, staleFiles, writeGenerated } from './crd-generate.js';
import { serveController } from './serve.js';

const flag = (key: string) => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** Adds `serve controller` under `serve` and `crd generate|print` under `program`. */
export function registerControllerCommands(program: Command, serve: Command): void {
  const cmd = serve
    .command('controller')
    .description('Run the Kubernetes controller: reconciles TrainingRuns into actor pods, NATS streams and status');
  for (const key of Object.keys(ControllerConfigSchema.shape)) {
    cmd.option(`--${flag(key)} <value>`, `controller config ${key} (env PARLEY_${flag(key).replace(/-/g, '_').toUpperCase()})`);
  }
  cmd.action(async (opts: Record<string, string | undefined>) => {
    const logger = createLogger('controller');
    const running = await serveController(opts, logger);
    onShutdown(logger, [() => running.close()]);
  });

  const crd = program.command('crd').description('The TrainingRun CustomResourceDefinition');
  crd
    .command('print')
    .description('Print the TrainingRun CRD as YAML (for kubectl apply -f -)')
    .action(() => {
      process.stdout.write(stringify(trainingRunCrd(), { lineWidth: 0 }));
    });
  crd
    .command('generate')
    .description('Write the CRD, RBAC and values.schema.json into the repository (or --check that they are current)')
    .option('--check', 'exit 1 when a generated file is stale instead of writing', false)
    .option('--root <dir>', 'repository root', REPO_ROOT)
    .action((opts: { check: boolean; root: string }) => {
      if (opts.check) {
        const stale = staleFiles(opts.root);
        if (stale.length) {
          process.stderr.write(`stale: ${stale.join(', ')} (run parley crd generate)\n`);
          process.exitCode = 1;
        }
        return;
      }
      for (const p of writeGenerated(opts.root)) process.stdout.write(`wrote ${p}\n`);
    });
}
