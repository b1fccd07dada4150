/**
 * A tiny GPT-2-style byte-level BPE tokenizer, trained here so the GGUF export's `gpt2` vocabulary path
 * can be proven without a large fixture: 256 byte tokens in GPT-2's byte-to-unicode alphabet, merges
 * learned greedily from a text (most frequent pair first, ties broken by the pair's text), and special
 * tokens at the end, exactly `size` ids in all.
 */

/** GPT-2's bytes_to_unicode: printable bytes stand for themselves, the rest move to U+0100 onwards. */
export function byteAlphabet(): string[] {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const byByte = new Array<string>(256);
  for (const b of printable) byByte[b] = String.fromCodePoint(b);
  let next = 0;
  for (let b = 0; b < 256; b++) if (byByte[b] === undefined) byByte[b] = String.fromCodePoint(256 + next++);
  return byByte;
}

/**
 * GPT-2's split pattern: merges are learned within these pieces (numbers stay whole, so digit merges exist
 * too).
 */
const SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

export interface ByteBpe {
  vocab: Record<string, number>;
  merges: [string, string][];
  specials: { content: string; id: number }[];
}

export function trainByteBpe(text: string, size: number, specialTokens: string[]): ByteBpe {
  const alphabet = byteAlphabet();
  const encoder = new TextEncoder();
  const words = new Map<string, number>();
  for (const piece of text.match(SPLIT) ?? []) {
    const mapped = [...encoder.encode(piece)].map((b) => alphabet[b]).join('');
    words.set(mapped, (words.get(mapped) ?? 0) + 1);
  }
  const split = [...words].map(([word, count]) => ({ symbols: [...word], count }));
  const vocab: Record<string, number> = {};
  // GPT-2 numbers the byte tokens printable bytes first, then the remapped ones: that is code point order.
  for (const ch of [...alphabet].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!))
    vocab[ch] = Object.keys(vocab).length;
  const merges: [string, string][] = [];
  const target = size - specialTokens.length;
  while (Object.keys(vocab).length < target) {
    const pairs = new Map<string, { pair: [string, string]; count: number }>();
    for (const { symbols, count } of split) {
      for (let i = 0; i + 1 < symbols.length; i++) {
        const key = symbols[i] + '\u0000' + symbols[i + 1];
        const entry = pairs.get(key) ?? { pair: [symbols[i], symbols[i + 1]], count: 0 };
        entry.count += count;
        pairs.set(key, entry);
      }
    }
    const best = [...pairs.values()].sort(
      (a, b) => b.count - a.count || (a.pair.join(' ') < b.pair.join(' ') ? -1 : 1),
    )[0];
    if (!best) throw new Error(`the training text allows only ${merges.length} merges; give it more text`);
    const [a, b] = best.pair;
    merges.push([a, b]);
    if (vocab[a + b] === undefined) vocab[a + b] = Object.keys(vocab).length;
    for (const word of split) {
      const out: string[] = [];
      for (let i = 0; i < word.symbols.length; i++) {
        if (i + 1 < word.symbols.length && word.symbols[i] === a && word.symbols[i + 1] === b) {
          out.push(a + b);
          i++;
        } else out.push(word.symbols[i]);
      }
      word.symbols = out;
    }
  }
  const specials = specialTokens.map((content) => ({
    content,
    id: Object.keys(vocab).length + specialTokens.indexOf(content),
  }));
  for (const s of specials) vocab[s.content] = s.id;
  return { vocab, merges, specials };
}

/** How the three byte-level families spell their pre-tokenizer in tokenizer.json. */
export const PRE_TOKENIZERS = {
  qwen2: {
    type: 'Sequence',
    pretokenizers: [
      {
        type: 'Split',
        pattern: {
          Regex:
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
        },
        behavior: 'Isolated',
        invert: false,
      },
      { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    ],
  },
  'gpt-2': { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
  smollm: {
    type: 'Sequence',
    pretokenizers: [
      { type: 'Digits', individual_digits: true },
      { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    ],
  },
} as const;

export const CHATML_TEMPLATE =
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/**
 * tokenizer.json for a trained vocabulary with one of the pre-tokenizers; merges as "a b" strings or ["a",
 * "b"] pairs.
 */
export function tokenizerJson(
  bpe: ByteBpe,
  pre: keyof typeof PRE_TOKENIZERS,
  mergeStyle: 'strings' | 'pairs',
): object {
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: bpe.specials.map((s) => ({
      id: s.id,
      content: s.content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: pre === 'qwen2' ? { type: 'NFC' } : null,
    pre_tokenizer: PRE_TOKENIZERS[pre],
    post_processor: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: Object.fromEntries(
        Object.entries(bpe.vocab).filter(([token]) => !bpe.specials.some((s) => s.content === token)),
      ),
      merges: mergeStyle === 'pairs' ? bpe.merges : bpe.merges.map(([a, b]) => `${a} ${b}`),
    },
  };
}
