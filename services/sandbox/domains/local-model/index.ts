// Writes the model folder of the builtin model for the local domain: a word-level tokenizer.json and a
// tokenizer_config.json with a compact chat template, loadable by @huggingface/tokenizers and the policy.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { localChatTemplate, type SystemPromptMode } from './chat-template.js';
import { ADDED_TOKENS, buildTokenizerConfig, buildTokenizerJson } from './tokenizer-spec.js';
import { buildLocalVocabulary } from './vocabulary.js';

export { localChatTemplate, type SystemPromptMode } from './chat-template.js';
export { ADDED_TOKENS, IM_END, IM_START, PAD, PRE_TOKENIZER_REGEX, TOOL_CALL_CLOSE, TOOL_CALL_OPEN, UNK, buildTokenizerJson, preTokenize } from './tokenizer-spec.js';
export { buildLocalVocabulary, localDomainCorpus, vocabularyOf } from './vocabulary.js';

export interface LocalModelFolderOptions {
  /** Whether the chat template renders the system prompt (default `omit`: it is constant and long). */
  systemPrompt?: SystemPromptMode;
  /** `model_max_length` written to tokenizer_config.json (default 512, the builtin model's context). */
  maxLength?: number;
}

export interface LocalModelFolder {
  dir: string;
  /** Token ids run from 0 to vocabSize - 1: [UNK], the added tokens, then the words. */
  vocabSize: number;
  words: string[];
}

/**
 * Writes tokenizer.json and tokenizer_config.json to `outDir` for a generated local domain folder, or for
 * a ready word list (`{ words }`). Rejects with the loader's error for a bad domain folder, an Error for a
 * repeated or empty word, and the file system's error when `outDir` cannot be written.
 */
export async function writeLocalModelFolder(
  source: string | { words: readonly string[] },
  outDir: string,
  opts: LocalModelFolderOptions = {},
): Promise<LocalModelFolder> {
  const words = typeof source === 'string' ? await buildLocalVocabulary(source) : [...source.words];
  const tokenizer = buildTokenizerJson(words);
  const config = buildTokenizerConfig(localChatTemplate(opts.systemPrompt ?? 'omit'), opts.maxLength ?? 512);
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'tokenizer.json'), JSON.stringify(tokenizer, null, 1) + '\n');
  writeFileSync(join(outDir, 'tokenizer_config.json'), JSON.stringify(config, null, 2) + '\n');
  return { dir: outDir, vocabSize: 1 + ADDED_TOKENS.length + words.length, words };
}
