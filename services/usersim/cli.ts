// `parley serve usersim`: flags for the user-simulator service, for the CLI to mount with commander.

import { Command, Option } from 'commander';
import { createLogger, onShutdown } from '../core/index.js';
import { serveUserSimulator, type RunningUserSimulator } from './index.js';

/** Flags as commander parses them (strings; numbers and booleans are coerced by the config schema). */
export interface UsersimCliOptions {
  mode?: string;
  host?: string;
  port?: string;
  metricsPort?: string;
  baseUrl?: string;
  model?: string;
  apiKeyEnv?: string;
  apiKeyFile?: string;
  temperature?: string;
  maxTokens?: string;
  timeoutMs?: string;
  maxRetries?: string;
  promptPrice?: string;
  completionPrice?: string;
  promptStyle?: string;
  guidelines?: string;
  personaGuidelines?: string;
  /** false with --no-cache. */
  cache?: boolean;
  cachePath?: string;
  maxConversations?: string;
  idleTtlMs?: string;
  maxTurns?: string;
  maxIdleTurns?: string;
  nats?: string;
  run?: string;
}

/**
 * Starts the service from CLI flags (over PARLEY_USERSIM_* variables) and stops it gracefully on
 * SIGTERM/SIGINT. Rejects with ParleyError like serveUserSimulator (bad flag: invalid_argument naming it).
 */
export async function serveUserSimulatorCommand(opts: UsersimCliOptions): Promise<RunningUserSimulator> {
  const logger = createLogger('usersim');
  const running = await serveUserSimulator({
    logger,
    config: {
      mode: opts.mode,
      host: opts.host,
      port: opts.port,
      metricsPort: opts.metricsPort,
      baseUrl: opts.baseUrl,
      model: opts.model,
      apiKeyEnv: opts.apiKeyEnv,
      apiKeyFile: opts.apiKeyFile,
      temperature: opts.temperature,
      maxTokens: opts.maxTokens,
      timeoutMs: opts.timeoutMs,
      maxRetries: opts.maxRetries,
      promptUsdPerMTok: opts.promptPrice,
      completionUsdPerMTok: opts.completionPrice,
      promptStyle: opts.promptStyle,
      guidelinesPath: opts.guidelines,
      personaGuidelines: opts.personaGuidelines,
      // --no-cache sets false; otherwise leave it to the environment and the default.
      cache: opts.cache === false ? false : undefined,
      cachePath: opts.cachePath,
      maxConversations: opts.maxConversations,
      idleTtlMs: opts.idleTtlMs,
      maxTurns: opts.maxTurns,
      scriptedMaxIdleTurns: opts.maxIdleTurns,
      busUrl: opts.nats,
      run: opts.run,
    },
  });
  onShutdown(logger, [() => running.close()]);
  return running;
}

/** The `usersim` subcommand (mount under `serve`). Prints the error and sets exit code 2 when start-up fails. */
export function usersimCommand(): Command {
  return new Command('usersim')
    .description('serve the UserSimulator gRPC service (LLM user via an OpenAI-compatible endpoint, or a scripted user), and over NATS with --nats')
    .addOption(new Option('--mode <mode>', 'who plays the user (default scripted)').choices(['llm', 'scripted']))
    .option('--host <host>', 'interface to bind (default 0.0.0.0)')
    .option('--port <port>', 'gRPC port, 0 = any free (default 50053)')
    .option('--metrics-port <port>', '/metrics port, -1 = off (default 9464)')
    .option('--base-url <url>', 'OpenAI-compatible API base URL (llm mode), e.g. http://localhost:8000/v1')
    .option('--model <name>', 'model name (llm mode)')
    .option('--api-key-env <name>', 'environment variable holding the API key (default OPENAI_API_KEY)')
    .option('--api-key-file <path>', 'file holding the API key (a mounted secret)')
    .option('--temperature <t>', 'sampling temperature (default 0)')
    .option('--max-tokens <n>', 'completion token cap per user turn')
    .option('--timeout-ms <ms>', 'per-request timeout (default 60000)')
    .option('--max-retries <n>', 'retries on 429/5xx/timeouts/unusable responses (default 4)')
    .option('--prompt-price <usd>', 'US dollars per 1M prompt tokens (default 0)')
    .option('--completion-price <usd>', 'US dollars per 1M completion tokens (default 0)')
    .addOption(new Option('--prompt-style <style>', 'system prompt (default tau2)').choices(['tau2', 'tau-bench-v1']))
    .option('--guidelines <path>', 'tau2 user_simulator/simulation_guidelines.md (default from PARLEY_TAU2_DATA)')
    .option('--persona-guidelines <text>', 'text replacing <PERSONA_GUIDELINES> in the guidelines')
    .option('--no-cache', 'do not cache LLM user turns')
    .option('--cache-path <file>', 'JSON-lines file that keeps cached turns across runs')
    .option('--max-conversations <n>', 'most live conversations (default 10000)')
    .option('--idle-ttl-ms <ms>', 'drop conversations idle this long (default 1800000)')
    .option('--max-turns <n>', 'most user turns per conversation (default 200)')
    .option('--max-idle-turns <n>', 'scripted mode: turns with nothing to add before ###STOP### (default 2)')
    .option('--nats <url>', 'also serve over NATS request-reply at this URL (env PARLEY_BUS_URL)')
    .option('--run <name>', 'run whose subjects are served over NATS, parley.<run>.rpc.UserSimulator.*; required with --nats (env PARLEY_RUN)')
    .action(async (opts: UsersimCliOptions) => {
      try {
        const running = await serveUserSimulatorCommand(opts);
        process.stderr.write(
          `user simulator (${running.config.mode}) serving gRPC on ${running.config.host}:${running.port}` +
            (running.bus ? ` and over NATS in run '${running.bus.run}'` : '') +
            (running.metricsPort !== undefined ? `, metrics on :${running.metricsPort}/metrics` : '') +
            '; Ctrl-C to stop\n',
        );
      } catch (e) {
        process.stderr.write(`parley serve usersim: ${(e as Error).message}\n`);
        process.exitCode = 2;
      }
    });
}
