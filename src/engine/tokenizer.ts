/**
 * Tokenizers come from @huggingface/transformers, built from the two JSON files in memory so that
 * nothing is fetched: the same code serves a local folder (CLI), files a user dropped (page) and files
 * from a cache.
 */
import * as transformers from '@huggingface/transformers';
import { compileChatTemplate, type CompiledChatTemplate } from './chat-template';

// webtune downloads and caches model files itself (src/hub); transformers.js must never fetch or read
// any on its own, whatever a model's files ask for.
transformers.env.allowRemoteModels = false;
transformers.env.allowLocalModels = false;

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | (string & {});
  content: string;
}

/** The narrow tokenizer surface the rest of webtune relies on. */
export interface Tokenizer {
  readonly bosTokenId: number | null;
  readonly eosTokenId: number | null;
  /** Whether encode() with special tokens puts BOS first (tokenizer_config `add_bos_token`). */
  readonly addsBos: boolean;
  readonly vocabSize: number;
  /** Jinja chat template from tokenizer_config.json, or null when the model has none. */
  readonly chatTemplate: string | null;
  encode(text: string, options?: { addSpecialTokens?: boolean }): number[];
  decode(ids: number[], options?: { skipSpecialTokens?: boolean }): string;
  /** Renders messages with the model's chat template (throws when there is none). */
  applyChatTemplate(messages: ChatMessage[], options?: { addGenerationPrompt?: boolean }): string;
}

export interface TokenizerFiles {
  /** Parsed tokenizer.json */
  tokenizerJson: unknown;
  /** Parsed tokenizer_config.json */
  tokenizerConfig: Record<string, unknown>;
}

type TransformersTokenizer = InstanceType<typeof transformers.PreTrainedTokenizer>;

export class TokenizerFileError extends Error {
  override name = 'TokenizerFileError';
}

/**
 * tokenizer_config.json's tokenizer_class values webtune accepts (a "Fast" suffix is dropped, as
 * AutoTokenizer does): what the supported families ship — Llama/Mistral SentencePiece-style BPE
 * (LlamaTokenizer: stories260K, Mistral), GPT-2 byte-level BPE (SmolLM2), Qwen2Tokenizer (Qwen2.5,
 * Qwen3), GemmaTokenizer (Gemma 3: byte-fallback BPE) — and no class at all. Anything else is refused
 * by name instead of being built.
 */
export const ACCEPTED_TOKENIZER_CLASSES = [
  'LlamaTokenizer',
  'GPT2Tokenizer',
  'Qwen2Tokenizer',
  'GemmaTokenizer',
  'PreTrainedTokenizer',
] as const;
/** tokenizer.json `model.type` values accepted: all of those families are BPE. */
export const ACCEPTED_TOKENIZER_MODELS = ['BPE'] as const;
/**
 * Longest text one encode() call takes. The accepted patterns below stay linear, but one call still
 * runs to completion with nothing able to interrupt it: on this project's machine 1 M characters of the
 * worst inputs found (runs of "\r\n", tabs, spaces) took up to 4.5 s, so half of that keeps a call to
 * about two seconds (tests/model-hostile.test.ts). Real prompts and dataset rows are far shorter: no
 * supported model has a context near 500,000 characters.
 */
export const MAX_ENCODE_CHARS = 500_000;

/**
 * The only regular expressions accepted in tokenizer.json, exactly as the tokenizers of the supported
 * families spell them. Pre-tokenizer patterns run in the JavaScript engine, which backtracks: `(a+)+$`
 * stalls on 30 characters, and even `a*a*!` (no nesting) takes seconds on 1,000 — so no shape rule
 * makes an arbitrary pattern safe, and any other pattern is refused. SentencePiece-style (Llama 2,
 * Mistral, stories260K) and GPT-2 byte-level (SmolLM2) tokenizers use none; these were measured to
 * stay linear on MAX_ENCODE_CHARS of adversarial text (tests/model-hostile.test.ts).
 */
export const ACCEPTED_PATTERNS: Record<string, string> = {
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+":
    'Qwen2 (Qwen2.5, Qwen3)',
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+":
    'Llama 3',
  "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+": 'GPT-2',
};

/** Every `{"Regex": …}` pattern in the normalizer, pre-tokenizer, post-processor and decoder sections. */
function regexPatterns(value: unknown, out: string[] = [], depth = 0): string[] {
  if (depth > 32 || !value || typeof value !== 'object') return out;
  for (const [key, v] of Object.entries(value)) {
    if (key === 'Regex') out.push(typeof v === 'string' ? v : JSON.stringify(v));
    else regexPatterns(v, out, depth + 1);
  }
  return out;
}

/** Refuses tokenizer files webtune does not know to be safe and correct to run, naming what was found. */
function checkTokenizerFiles(json: Record<string, unknown>, config: Record<string, unknown>): string {
  const rawClass = config.tokenizer_class ?? 'PreTrainedTokenizer';
  const className = String(rawClass).replace(/Fast$/, '');
  if (!(ACCEPTED_TOKENIZER_CLASSES as readonly string[]).includes(className)) {
    throw new TokenizerFileError(
      `tokenizer_config.json: tokenizer class ${JSON.stringify(rawClass)} is not supported. webtune accepts ${ACCEPTED_TOKENIZER_CLASSES.join(', ')} (the tokenizers of Llama, Mistral, SmolLM2 and Qwen models).`,
    );
  }
  const model = json.model as Record<string, unknown> | null;
  const modelType =
    model && typeof model === 'object'
      ? (model.type ?? (Array.isArray(model.merges) ? 'BPE' : undefined))
      : undefined;
  if (!(ACCEPTED_TOKENIZER_MODELS as readonly unknown[]).includes(modelType)) {
    throw new TokenizerFileError(
      `tokenizer.json: tokenizer model ${JSON.stringify(modelType ?? null)} is not supported. webtune accepts ${ACCEPTED_TOKENIZER_MODELS.join(', ')} tokenizers (Llama, Mistral, SmolLM2 and Qwen models use BPE).`,
    );
  }
  for (const section of ['normalizer', 'pre_tokenizer', 'post_processor', 'decoder']) {
    for (const pattern of regexPatterns(json[section])) {
      if (Object.hasOwn(ACCEPTED_PATTERNS, pattern)) continue;
      const shown = JSON.stringify(pattern.length > 80 ? pattern.slice(0, 80) + '…' : pattern);
      throw new TokenizerFileError(
        `tokenizer.json: the ${section} pattern ${shown} is not one webtune runs. A tokenizer's regular expressions run in the JavaScript engine, where a hostile pattern can stall it; webtune accepts only the patterns of the ${[...new Set(Object.values(ACCEPTED_PATTERNS))].join(', ')} tokenizers.`,
      );
    }
  }
  return className;
}

export function createTokenizer(files: TokenizerFiles): Tokenizer {
  const json = files.tokenizerJson as Record<string, unknown> | null;
  if (!json || typeof json !== 'object' || !('model' in json)) {
    throw new Error(
      'tokenizer.json is not a Hugging Face tokenizer file (it has no "model" section). Export the tokenizer again with save_pretrained().',
    );
  }
  const config = files.tokenizerConfig ?? {};
  // Same class choice as AutoTokenizer: tokenizer_class without its "Fast" suffix, from the accepted few.
  const className = checkTokenizerFiles(json, config);
  const classes = transformers as unknown as Record<
    string,
    new (j: unknown, c: unknown) => TransformersTokenizer
  >;
  const TokenizerClass = classes[className] ?? transformers.PreTrainedTokenizer;
  const inner = new TokenizerClass(json, config);
  return wrap(inner, config);
}

/**
 * tokenizer_config.json's special token as text (a string, or an AddedToken object's content), as
 * transformers.js reads it.
 */
function specialToken(config: Record<string, unknown>, key: string): string | null {
  const item = config[key];
  if (typeof item === 'string' && item) return item;
  if (item && typeof item === 'object' && typeof (item as { content?: unknown }).content === 'string')
    return (item as { content: string }).content;
  return null;
}
const SPECIAL_TOKENS = [
  'bos_token',
  'eos_token',
  'unk_token',
  'sep_token',
  'pad_token',
  'cls_token',
  'mask_token',
];

function checkLength(text: string): string {
  if (typeof text === 'string' && text.length > MAX_ENCODE_CHARS) {
    throw new Error(
      `A text of ${text.length.toLocaleString('en')} characters is too long to tokenize at once (at most ${MAX_ENCODE_CHARS.toLocaleString('en')}). Split it into shorter texts.`,
    );
  }
  return text;
}

function wrap(inner: TransformersTokenizer, config: Record<string, unknown>): Tokenizer {
  const idOrNull = (v: unknown) => (typeof v === 'number' && v >= 0 ? v : null);
  const chatTemplate = typeof inner.chat_template === 'string' ? inner.chat_template : null;
  const bosTokenId = idOrNull(inner.bos_token_id);
  const probe = bosTokenId === null ? [] : inner.encode('a');
  let compiled: CompiledChatTemplate | null = null;
  const specialTokens: Record<string, string> = {};
  for (const key of SPECIAL_TOKENS) {
    const token = specialToken(config, key);
    if (token !== null) specialTokens[key] = token;
  }
  return {
    bosTokenId,
    eosTokenId: idOrNull(inner.eos_token_id),
    addsBos: bosTokenId !== null && probe[0] === bosTokenId,
    vocabSize: (inner.get_vocab() as unknown as Map<string, number>).size,
    chatTemplate,
    encode: (text, options) =>
      inner.encode(checkLength(text), { add_special_tokens: options?.addSpecialTokens ?? true }),
    decode: (ids, options) => inner.decode(ids, { skip_special_tokens: options?.skipSpecialTokens ?? true }),
    applyChatTemplate(messages, options) {
      if (!chatTemplate) throw new Error('This model has no chat template; use a prompt template instead.');
      // Rendered as transformers.js's apply_chat_template does, but with step, time and size bounds
      // (chat-template.ts).
      compiled ??= compileChatTemplate(chatTemplate);
      return compiled.render({
        messages,
        add_generation_prompt: options?.addGenerationPrompt ?? false,
        tools: null,
        documents: null,
        ...specialTokens,
      });
    },
  };
}
