// The builtin model's word-level tokenizer as a Hugging Face tokenizer.json (whole-word WordPiece, Split
// pre-tokenizer, Fuse decoder): decoding the tokens of any in-vocabulary text gives the text back exactly.

import { Tokenizer } from '@huggingface/tokenizers';

export const UNK = '[UNK]';
export const PAD = '<|endoftext|>';
export const IM_START = '<|im_start|>';
export const IM_END = '<|im_end|>';
export const TOOL_CALL_OPEN = '<tool_call>';
export const TOOL_CALL_CLOSE = '</tool_call>';

/** Added tokens, in id order after [UNK] (id 0). Special ones are dropped by `skip_special_tokens`. */
export const ADDED_TOKENS: { content: string; special: boolean }[] = [
  { content: PAD, special: true },
  { content: IM_START, special: true },
  { content: IM_END, special: true },
  { content: TOOL_CALL_OPEN, special: false },
  { content: TOOL_CALL_CLOSE, special: false },
];

/**
 * JSON punctuation that tool calls and results repeat, kept as one token each (longest first). Any other
 * punctuation is split into single characters, which are all in the vocabulary, so no punctuation is
 * ever unknown.
 */
export const PUNCTUATION_RUNS = ['": {"', '": ["', '"]}}', '": "', '", "', '"]}', '"}}', '": ', ', "', '{"', '"}', '"]', '###'];

/** Every printable ASCII punctuation character, and the whitespace characters, as single tokens. */
export const SINGLE_CHARACTERS = [...'!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~', ' ', '\n', '\t'];

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Words (`\w+`), the punctuation runs above, single punctuation characters, single whitespace characters. */
export const PRE_TOKENIZER_REGEX = ['\\w+', ...PUNCTUATION_RUNS.map(escapeRe), '[^\\w\\s]', '\\s'].join('|');

export const PRE_TOKENIZER = { type: 'Split', pattern: { Regex: PRE_TOKENIZER_REGEX }, behavior: 'Isolated', invert: false } as const;

let splitter: ((text: string) => string[]) | undefined;
const addedPattern = new RegExp(`(${ADDED_TOKENS.map((t) => escapeRe(t.content)).join('|')})`);

/** The library's own pre-tokenizer, built from this file's tokenizer.json, so the vocabulary matches encoding exactly. */
function pieceSplitter(): (text: string) => string[] {
  if (!splitter) {
    const pre = new Tokenizer(buildTokenizerJson([]), {}).pre_tokenizer;
    if (!pre) throw new Error('the local tokenizer has no pre-tokenizer');
    splitter = (text) => pre.pre_tokenize(text);
  }
  return splitter;
}

/** The pieces the tokenizer looks up for `text`: added tokens whole, the rest pre-tokenized. Never throws. */
export function preTokenize(text: string): string[] {
  const out: string[] = [];
  text.split(addedPattern).forEach((part, i) => {
    if (part === '') return;
    if (i % 2 === 1) out.push(part);
    else out.push(...pieceSplitter()(part));
  });
  return out;
}

/** Whether `piece` is one of the added tokens. Never throws. */
export function isAddedToken(piece: string): boolean {
  return ADDED_TOKENS.some((t) => t.content === piece);
}

/**
 * The tokenizer.json object for a word list: [UNK] is id 0, the added tokens follow, then the words in
 * the given order. The WordPiece vocabulary has no `##` pieces, so a word not in it is one [UNK]; the
 * Fuse decoder joins tokens without adding spaces (whitespace is its own tokens). Throws when a word is
 * empty, repeated, or an added token.
 */
export function buildTokenizerJson(words: readonly string[]): Record<string, unknown> {
  const vocab: Record<string, number> = { [UNK]: 0 };
  ADDED_TOKENS.forEach((t, i) => (vocab[t.content] = i + 1));
  for (const w of words) {
    if (w === '' || w in vocab) throw new Error(`vocabulary word ${JSON.stringify(w)} is empty, repeated or reserved`);
    vocab[w] = Object.keys(vocab).length;
  }
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: ADDED_TOKENS.map((t, i) => ({
      id: i + 1,
      content: t.content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: t.special,
    })),
    normalizer: null,
    pre_tokenizer: PRE_TOKENIZER,
    post_processor: null,
    decoder: { type: 'Fuse' },
    model: { type: 'WordPiece', unk_token: UNK, continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab },
  };
}

/** tokenizer_config.json: the chat template and the special tokens (EOS ends an assistant turn). Never throws. */
export function buildTokenizerConfig(chatTemplate: string, maxLength: number): Record<string, unknown> {
  const decoder: Record<string, unknown> = {};
  ADDED_TOKENS.forEach((t, i) => {
    decoder[String(i + 1)] = { content: t.content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: t.special };
  });
  return {
    add_bos_token: false,
    add_eos_token: false,
    added_tokens_decoder: decoder,
    additional_special_tokens: [IM_START, IM_END],
    bos_token: PAD,
    eos_token: IM_END,
    pad_token: PAD,
    unk_token: UNK,
    clean_up_tokenization_spaces: false,
    model_max_length: maxLength,
    tokenizer_class: 'PreTrainedTokenizerFast',
    chat_template: chatTemplate,
  };
}
