// The policy's pieces of the `parley` command: `policy render` (a conversation to token ids, loss mask
// and text) and the action behind `serve policy`, for the CLI to register.

import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { ParleyError, createLogger, envOverrides, invalidArgument, onShutdown, type Logger } from '../core/index.js';
import { loadChatModel, type ChatModel } from './chat-model.js';
import { PolicyConfigSchema, resolvePolicyConfig, type PolicyConfig } from './config.js';
import type { PolicyBackend } from './backend.js';
import { fromOpenAIMessages, fromOpenAITools, toTemplateTools, validateConversation } from './conversation.js';
import { servePolicy, type RunningPolicy } from './serve.js';
import { buildTito } from './tito.js';

export interface RenderedConversation {
  token_ids: number[];
  loss_mask: number[];
  text: string;
}

export interface RenderOptions {
  enableThinking?: boolean;
  /** auto: add the assistant header unless the conversation ends with an assistant turn. */
  generationPrompt?: 'auto' | 'always' | 'never';
}

/**
 * Renders a conversation token-in-token-out. `value` is a list of OpenAI-style messages or
 * `{messages, tools}`; assistant messages may carry `token_ids`, used verbatim (loss mask 1).
 * Throws ParleyError(invalid_argument) naming the field (`conversation[2].role`, ...).
 */
export function renderConversation(model: ChatModel, value: unknown, extraTools: unknown = undefined, opts: RenderOptions = {}): RenderedConversation {
  const obj = value && typeof value === 'object' && !Array.isArray(value) ? (value as { messages?: unknown; tools?: unknown }) : undefined;
  const messages = fromOpenAIMessages(obj ? obj.messages : value, obj ? 'conversation.messages' : 'conversation');
  const tools = [...fromOpenAITools(obj?.tools, 'conversation.tools'), ...fromOpenAITools(extraTools, 'tools')];
  const mode = opts.generationPrompt ?? 'auto';
  const addGenerationPrompt = mode === 'always' || (mode === 'auto' && messages[messages.length - 1]?.role !== 'assistant');
  validateConversation(messages, model.vocabSize, { field: obj ? 'conversation.messages' : 'conversation', forGeneration: mode === 'always' });
  const r = buildTito(model, messages, { tools: toTemplateTools(tools), enableThinking: opts.enableThinking ?? false, addGenerationPrompt });
  return { token_ids: r.tokenIds, loss_mask: r.lossMask, text: model.decode(r.tokenIds) };
}

function readJsonFile(path: string, field: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ParleyError('not_found', `${field}: cannot read ${path}: ${(e as Error).message}`, { field });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw invalidArgument(field, `${path} is not JSON: ${(e as Error).message}`);
  }
}

/**
 * `parley policy render`: loads the model folder and the conversation file and returns what the
 * command prints. Throws ParleyError: not_found for missing files, invalid_argument for bad content.
 */
export function renderConversationFile(opts: { tokenizer: string; conversation: string; tools?: string } & RenderOptions): RenderedConversation {
  const model = loadChatModel(opts.tokenizer);
  const conversation = readJsonFile(opts.conversation, 'conversation');
  const tools = opts.tools ? readJsonFile(opts.tools, 'tools') : undefined;
  return renderConversation(model, conversation, tools, opts);
}

/** Adds `policy render` under `program`; returns the `policy` command. Errors exit with status 2 and the message. */
export function registerPolicyCommands(program: Command): Command {
  const policy = program.command('policy').description('policy tools: chat rendering, token-in-token-out');
  policy
    .command('render')
    .description('print {"token_ids", "loss_mask", "text"} for a conversation (assistant token_ids are used verbatim)')
    .requiredOption('--tokenizer <dir>', 'model folder with tokenizer.json and tokenizer_config.json')
    .requiredOption('--conversation <file>', 'JSON: a list of OpenAI-style messages, or {"messages": [...], "tools": [...]}')
    .option('--tools <file>', 'JSON list of OpenAI-style tools')
    .option('--enable-thinking', 'render with enable_thinking (Qwen3)', false)
    .addOption(new Option('--generation-prompt <when>', 'append the assistant header').choices(['auto', 'always', 'never']).default('auto'))
    .action(function (this: Command, opts: { tokenizer: string; conversation: string; tools?: string; enableThinking: boolean; generationPrompt: 'auto' | 'always' | 'never' }) {
      try {
        process.stdout.write(JSON.stringify(renderConversationFile(opts)) + '\n');
      } catch (e) {
        this.error(`error: ${ParleyError.from(e).message}`, { exitCode: 2 });
      }
    });
  return policy;
}

/**
 * Flags of `parley serve policy`: every config field as a kebab-case flag plus `--config <file>`; busUrl
 * is `--nats`, as on every server that also serves over the bus (servePolicyCommand maps it back).
 */
export function addServePolicyOptions(cmd: Command): Command {
  cmd.option('--config <file>', 'YAML or JSON file with policy config fields (flags override it)');
  for (const key of Object.keys(PolicyConfigSchema.shape)) {
    if (key === 'apiKey') continue; // secrets come from PARLEY_API_KEY or the config file, never argv
    const kebab = key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    const flag = key === 'busUrl' ? 'nats' : kebab;
    cmd.option(`--${flag} <value>`, `policy config ${key} (env PARLEY_${kebab.replace(/-/g, '_').toUpperCase()})`);
  }
  return cmd;
}

/**
 * The action of `parley serve policy`: merges the `--config` file, PARLEY_* environment and flags (in
 * rising precedence), starts the service and, unless `handleSignals` is false, stops it gracefully on
 * SIGTERM/SIGINT. Rejects with ParleyError: invalid_argument for an unreadable config file, else as
 * servePolicy does.
 */
export async function servePolicyCommand(
  opts: Record<string, unknown> & { config?: string; nats?: string },
  deps: { logger?: Logger; handleSignals?: boolean; /** Builds backends the policy cannot build itself (trainer-engine). */ backendFor?: (config: PolicyConfig) => PolicyBackend | undefined } = {},
): Promise<RunningPolicy> {
  const { config: file, nats, ...rest } = opts;
  const flags = nats === undefined ? rest : { ...rest, busUrl: nats };
  let fromFile: Record<string, unknown> = {};
  if (file) {
    let parsed: unknown;
    try {
      parsed = parseYaml(readFileSync(file, 'utf8'));
    } catch (e) {
      throw invalidArgument('config', `cannot read ${file}: ${(e as Error).message}`);
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw invalidArgument('config', `${file} must hold a mapping of config fields`);
    fromFile = parsed as Record<string, unknown>;
  }
  const logger = deps.logger ?? createLogger('policy');
  // Precedence: flags over PARLEY_* environment over the file.
  const fromEnv = envOverrides(Object.keys(PolicyConfigSchema.shape));
  const config = { ...fromFile, ...fromEnv, ...flags };
  // PARLEY_* were merged above; POD_NAME (the pod's name, from the downward API) names the replica.
  const env = process.env.POD_NAME ? { POD_NAME: process.env.POD_NAME } : {};
  const running = await servePolicy({ config, env, logger, backend: deps.backendFor?.(resolvePolicyConfig(config, env)) });
  if (deps.handleSignals ?? true) onShutdown(logger, [() => running.close()]);
  return running;
}
