/**
 * Tokenizers come from @huggingface/transformers, built from the two JSON files in memory so that
 * nothing is fetched: the same code serves a local folder (CLI), files a user dropped (page) and files
 * from a cache.
 */
import * as transformers from '@huggingface/transformers';

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

export function createTokenizer(files: TokenizerFiles): Tokenizer {
  const json = files.tokenizerJson as Record<string, unknown> | null;
  if (!json || typeof json !== 'object' || !('model' in json)) {
    throw new Error('tokenizer.json is not a Hugging Face tokenizer file (it has no "model" section). Export the tokenizer again with save_pretrained().');
  }
  const config = files.tokenizerConfig ?? {};
  // Same class choice as AutoTokenizer: tokenizer_class without its "Fast" suffix.
  const className = String(config.tokenizer_class ?? 'PreTrainedTokenizer').replace(/Fast$/, '');
  const classes = transformers as unknown as Record<string, new (j: unknown, c: unknown) => TransformersTokenizer>;
  const TokenizerClass = classes[className] && className.endsWith('Tokenizer') ? classes[className] : transformers.PreTrainedTokenizer;
  const inner = new TokenizerClass(json, config);
  return wrap(inner);
}

function wrap(inner: TransformersTokenizer): Tokenizer {
  const idOrNull = (v: unknown) => (typeof v === 'number' && v >= 0 ? v : null);
  const chatTemplate = typeof inner.chat_template === 'string' ? inner.chat_template : null;
  const bosTokenId = idOrNull(inner.bos_token_id);
  const probe = bosTokenId === null ? [] : inner.encode('a');
  return {
    bosTokenId,
    eosTokenId: idOrNull(inner.eos_token_id),
    addsBos: bosTokenId !== null && probe[0] === bosTokenId,
    vocabSize: (inner.get_vocab() as unknown as Map<string, number>).size,
    chatTemplate,
    encode: (text, options) => inner.encode(text, { add_special_tokens: options?.addSpecialTokens ?? true }),
    decode: (ids, options) => inner.decode(ids, { skip_special_tokens: options?.skipSpecialTokens ?? true }),
    applyChatTemplate(messages, options) {
      if (!chatTemplate) throw new Error('This model has no chat template; use a prompt template instead.');
      const text = inner.apply_chat_template(messages as never, {
        tokenize: false,
        add_generation_prompt: options?.addGenerationPrompt ?? false,
      });
      return String(text);
    },
  };
}
