// `parley prepare builtin --spec run.yaml --out DIR`: the init step of every pod that needs the builtin
// model (sandbox, policy, learner). It generates the run's local domain (seeded, so every pod gets the
// same tasks and database) and the builtin model's word tokenizer, exactly as `parley run` does, into
// DIR/data/local and DIR/model. Pods that share a volume may run it at once: each writes into a private
// folder and renames it into place, and a folder already there is kept. `parley prepare model` (in
// prepare-model.ts) downloads a url model source the same way.

import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { localPaths, prepareLocalData } from '../controller/local/setup.js';
import { generateDemonstrations } from '../sandbox/domains/local/expert.js';
import { readRunSpec } from './run-command.js';
import { CliError } from './errors.js';
import { prepareModel } from './prepare-model.js';

/** Writes DIR/data/local and DIR/model unless DIR already holds both. Rejects naming the spec's problem. */
export async function prepareBuiltin(specPath: string, outDir: string, log: (line: string) => void): Promise<void> {
  const spec = readRunSpec(resolve(specPath));
  if (spec.model.name !== 'builtin') throw new CliError(`model.name: '${spec.model.name}' is not the builtin model; nothing to prepare`);
  if (spec.data.domain !== 'local') throw new CliError(`data.domain: the builtin model has a word vocabulary for the generated 'local' domain only, got '${spec.data.domain}'`);
  const out = resolve(outDir);
  if (existsSync(join(out, 'model', 'tokenizer.json')) && existsSync(join(out, 'data', 'local', 'tasks.json'))) {
    log(`${out} already holds the builtin model and the local domain`);
    return;
  }
  rmSync(out, { recursive: true, force: true });
  const parent = dirname(out);
  mkdirSync(parent, { recursive: true });
  const scratch = mkdtempSync(join(parent, '.prepare-'));
  try {
    await prepareLocalData(spec, localPaths(spec, scratch), log);
    try {
      renameSync(scratch, out);
    } catch (e) {
      // Another pod on the same volume finished first: its folder is identical (same seed).
      if (!existsSync(join(out, 'model', 'tokenizer.json'))) throw e;
      log(`${out} was prepared by another pod`);
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * Writes DIR/demonstrations.jsonl (the learner's cold start, learner/cold-start.ts) unless it is there:
 * `sft.demonstrations` conversations of the local domain's imperfect expert, seeded by the spec. Needs
 * DIR/data/local (prepareBuiltin). Rejects naming the spec's problem.
 */
export async function prepareDemonstrations(specPath: string, outDir: string, log: (line: string) => void): Promise<void> {
  const spec = readRunSpec(resolve(specPath));
  const out = resolve(outDir);
  const file = join(out, 'demonstrations.jsonl');
  if (!spec.sft.enabled || typeof spec.sft.demonstrations !== 'number') return;
  if (existsSync(file)) {
    log(`${file} is there`);
    return;
  }
  const d = await generateDemonstrations({ domainDir: join(out, 'data', 'local'), count: spec.sft.demonstrations, skipAskRate: spec.sft.expertSkipAskRate, seed: spec.seed });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, d.demonstrations.map((x) => JSON.stringify({ messages: x.messages })).join('\n') + '\n');
  renameSync(tmp, file);
  log(`wrote ${d.demonstrations.length} demonstrations of an imperfect expert to ${file} (it solves ${(d.solvedShare * 100).toFixed(0)}%; skips asking ${(spec.sft.expertSkipAskRate * 100).toFixed(0)}% of the time)`);
}

export function registerPrepareCommand(program: Command): void {
  const prepare = program.command('prepare').description('prepare what a run needs before its actors start (the init containers of its pods)');
  prepare
    .command('model')
    .description("download a url model source: a .tar.gz or .tar of a Hugging Face model folder, extracted into DIR (kept when there)")
    .requiredOption('--url <url>', "http(s) URL of the archive (the run's model.source.url)")
    .requiredOption('--out <dir>', 'the model folder to create, e.g. /data/models/<name>-<hash>')
    .action(async (opts: { url: string; out: string }) => {
      await prepareModel(opts.url, opts.out, (line) => process.stderr.write(`${line}\n`));
    });
  prepare
    .command('builtin')
    .description("generate the run's local domain and the builtin model's tokenizer folder (DIR/data/local, DIR/model)")
    .requiredOption('--spec <file>', 'the run spec (the run ConfigMap’s run.yaml)')
    .requiredOption('--out <dir>', 'output folder, e.g. /data/<run>/builtin')
    .option('--demonstrations', "also write DIR/demonstrations.jsonl for the learner's cold start when sft.demonstrations is a number", false)
    .action(async (opts: { spec: string; out: string; demonstrations: boolean }) => {
      const log = (line: string) => process.stderr.write(`${line}\n`);
      await prepareBuiltin(opts.spec, opts.out, log);
      if (opts.demonstrations) await prepareDemonstrations(opts.spec, opts.out, log);
    });
}
