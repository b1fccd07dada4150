/**
 * A tokenizer as GGUF metadata, the way llama.cpp's convert_hf_to_gguf.py describes it: SentencePiece-style
 * vocabularies (`llama`: tokens with "▁", scores ordering the merges, byte tokens) and GPT-2 byte-level BPE
 * (`gpt2`: tokens, merges and the pre-tokenizer llama.cpp must split text with), special token ids and the
 * chat template. What llama.cpp cannot reproduce is refused rather than written subtly wrong.
 */
import type { ModelArgs } from '../engine/config';
import type { ModelFiles } from '../engine/model-files';
import { arr, bool, GgufExportError, str, u32, type GgufValue } from './gguf';

/** llama.cpp's token types. */
export const TOKEN_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => !!v && typeof v === 'object' && !Array.isArray(v);
const UNSUPPORTED =
  "webtune exports SentencePiece-style vocabularies (Llama 2, Mistral, stories260K) and GPT-2 byte-level BPE (SmolLM2, Qwen); export this model with llama.cpp's convert_hf_to_gguf.py instead.";

function refuse(what: string): never {
  throw new GgufExportError(`Cannot describe this tokenizer to llama.cpp: ${what}. ${UNSUPPORTED}`);
}

/** tokenizer_config.json's special token text: a string or an AddedToken's content. */
function specialText(config: Json, key: string): string | null {
  const v = config[key];
  if (typeof v === 'string' && v) return v;
  if (isObject(v) && typeof v.content === 'string') return v.content;
  return null;
}

/** The pre-tokenizer steps, flattened out of any Sequence. */
function steps(section: unknown): Json[] {
  if (!isObject(section)) return [];
  if (section.type === 'Sequence') {
    const inner = (section.pretokenizers ?? section.normalizers) as unknown;
    return Array.isArray(inner) ? inner.flatMap(steps) : [];
  }
  return [section];
}

const QWEN2_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const LLAMA3_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/**
 * llama.cpp's `tokenizer.ggml.pre` for a byte-level BPE pre-tokenizer: which regular expressions split
 * the text before merging. Chosen from what the pre-tokenizer does, not from the model's name:
 * `gpt-2` is ByteLevel's own regex, `smollm` splits digits one by one first (SmolLM2), `qwen2` and
 * `llama3` are the Split patterns of those families followed by a ByteLevel without its regex.
 */
function bytePreTokenizer(json: Json): string {
  const list = steps(json.pre_tokenizer);
  const byteLevel = list.at(-1);
  if (!byteLevel || byteLevel.type !== 'ByteLevel') refuse('the pre-tokenizer does not end with ByteLevel');
  if (byteLevel.add_prefix_space === true)
    refuse('its ByteLevel pre-tokenizer adds a prefix space, which llama.cpp does not do');
  const before = list.slice(0, -1);
  const usesRegex = byteLevel.use_regex !== false;
  if (usesRegex && before.length === 0) return 'gpt-2';
  if (usesRegex && before.length === 1 && before[0].type === 'Digits' && before[0].individual_digits === true)
    return 'smollm';
  if (!usesRegex && before.length === 1 && before[0].type === 'Split') {
    const pattern = isObject(before[0].pattern) ? before[0].pattern.Regex : undefined;
    if (pattern === QWEN2_PATTERN) return 'qwen2';
    if (pattern === LLAMA3_PATTERN) return 'llama-bpe';
  }
  refuse(
    `its pre-tokenizer (${list.map((s) => String(s.type)).join(' → ') || 'none'}) matches none of llama.cpp's GPT-2, SmolLM, Qwen2 or Llama 3 splitters`,
  );
}

/** Whether llama.cpp must put "▁" in front of the text, from how tokenizer.json turns spaces into "▁". */
function sentencePieceSpacePrefix(json: Json): boolean {
  const normalizers = steps(json.normalizer);
  const isReplaceSpace = (n: Json) =>
    n.type === 'Replace' && isObject(n.pattern) && n.pattern.String === ' ' && n.content === '▁';
  // Gemma's tokenizer splits on " " after a normalizer that has turned every space into "▁": a split
  // that finds nothing to split.
  const isSpaceSplit = (p: Json) => p.type === 'Split' && isObject(p.pattern) && p.pattern.String === ' ';
  const pre = steps(json.pre_tokenizer).filter((p) => !(isSpaceSplit(p) && normalizers.some(isReplaceSpace)));
  if (pre.length === 0) {
    if (
      normalizers.length === 2 &&
      normalizers[0].type === 'Prepend' &&
      normalizers[0].prepend === '▁' &&
      isReplaceSpace(normalizers[1])
    )
      return true;
    if (normalizers.length === 1 && isReplaceSpace(normalizers[0])) return false;
  } else if (
    normalizers.length === 0 &&
    pre.length === 1 &&
    pre[0].type === 'Metaspace' &&
    (pre[0].replacement ?? '▁') === '▁'
  ) {
    const scheme = pre[0].prepend_scheme ?? (pre[0].add_prefix_space === false ? 'never' : 'always');
    if (pre[0].split !== true && (scheme === 'always' || scheme === 'first')) return true;
    if (pre[0].split !== true && scheme === 'never') return false;
  }
  refuse('its normalizer and pre-tokenizer do not turn spaces into "▁" the way SentencePiece does');
}

interface Vocabulary {
  tokens: string[];
  types: number[];
  idOf: Map<string, number>;
}

/**
 * tokenizer.json's vocabulary and added tokens by id, padded to the model's vocab_size as the converter pads
 * it.
 */
function vocabulary(json: Json, model: Json, vocabSize: number, unknown: string | null): Vocabulary {
  const vocab = model.vocab;
  if (!isObject(vocab)) refuse('tokenizer.json has no vocabulary');
  const byId = new Map<number, string>();
  for (const [token, id] of Object.entries(vocab)) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0)
      refuse(`the vocabulary gives "${token}" the id ${JSON.stringify(id)}`);
    byId.set(id, token);
  }
  const added = new Map<number, { content: string; special: boolean }>();
  for (const t of Array.isArray(json.added_tokens) ? json.added_tokens : []) {
    if (isObject(t) && typeof t.id === 'number' && typeof t.content === 'string') {
      added.set(t.id, { content: t.content, special: t.special === true });
      byId.set(t.id, t.content);
    }
  }
  let largest = -1;
  for (const id of byId.keys()) largest = Math.max(largest, id);
  if (largest >= vocabSize)
    refuse(`the tokenizer has ids up to ${largest} but config.json's vocab_size is ${vocabSize}`);
  const tokens: string[] = [];
  const types: number[] = [];
  const idOf = new Map<string, number>();
  for (let id = 0; id < vocabSize; id++) {
    const token = byId.get(id);
    const extra = added.get(id);
    if (token === undefined) {
      tokens.push(`[PAD${id}]`);
      types.push(TOKEN_TYPE.UNUSED);
      continue;
    }
    if (idOf.has(token)) refuse(`the token ${JSON.stringify(token)} appears twice`);
    idOf.set(token, id);
    tokens.push(token);
    // The unknown token is UNKNOWN even when tokenizer.json also lists it among the added special tokens.
    types.push(
      token === unknown
        ? TOKEN_TYPE.UNKNOWN
        : extra
          ? extra.special
            ? TOKEN_TYPE.CONTROL
            : TOKEN_TYPE.USER_DEFINED
          : TOKEN_TYPE.NORMAL,
    );
  }
  return { tokens, types, idOf };
}

/** Merges as pairs, whether tokenizer.json stores them as "a b" strings or ["a", "b"] arrays. */
function mergePairs(model: Json): [string, string][] {
  const merges = Array.isArray(model.merges) ? model.merges : [];
  return merges.map((m): [string, string] => {
    if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string')
      return [m[0], m[1]];
    if (typeof m === 'string') {
      const parts = m.split(' ');
      if (parts.length === 2) return [parts[0], parts[1]];
    }
    return refuse(`the merge ${JSON.stringify(m)} is not a pair of tokens`);
  });
}

export function tokenizerMetadata(
  files: Pick<ModelFiles, 'tokenizerJson' | 'tokenizerConfig'>,
  args: ModelArgs,
): [string, GgufValue][] {
  let json: Json;
  let config: Json;
  try {
    json = JSON.parse(files.tokenizerJson) as Json;
    config = JSON.parse(files.tokenizerConfig || '{}') as Json;
  } catch (error) {
    throw new GgufExportError(
      `tokenizer.json or tokenizer_config.json is not valid JSON (${(error as Error).message}). Use the files exactly as the model repository has them.`,
    );
  }
  if (!isObject(json) || !isObject(json.model)) refuse('tokenizer.json has no "model" section');
  if (!isObject(config)) config = {};
  const model = json.model;
  if ((model.type ?? (Array.isArray(model.merges) ? 'BPE' : undefined)) !== 'BPE')
    refuse(`its model is ${JSON.stringify(model.type ?? null)}, not BPE`);
  const unknown = typeof model.unk_token === 'string' ? model.unk_token : null;
  const { tokens, types, idOf } = vocabulary(json, model, args.vocabSize, unknown);
  const merges = mergePairs(model);
  const byteLevel = steps(json.pre_tokenizer).some((s) => s.type === 'ByteLevel');
  const meta: [string, GgufValue][] = [];

  if (byteLevel) {
    // llama.cpp normalizes nothing: NFC (Qwen's) leaves already-composed text as it is; anything else would
    // differ.
    const normalizers = steps(json.normalizer);
    if (normalizers.some((n) => n.type !== 'NFC'))
      refuse(
        `its normalizer (${normalizers.map((n) => String(n.type)).join(' → ')}) changes text before byte-level BPE, which llama.cpp does not do`,
      );
    for (const [a, b] of merges)
      if (a.includes(' ') || b.includes(' '))
        refuse(`the merge ${JSON.stringify([a, b])} holds a space, which GGUF's "a b" merges cannot express`);
    meta.push(['tokenizer.ggml.model', str('gpt2')], ['tokenizer.ggml.pre', str(bytePreTokenizer(json))]);
    meta.push(
      ['tokenizer.ggml.tokens', arr('string', tokens)],
      ['tokenizer.ggml.token_type', arr('int32', types)],
    );
    meta.push([
      'tokenizer.ggml.merges',
      arr(
        'string',
        merges.map(([a, b]) => `${a} ${b}`),
      ),
    ]);
  } else {
    // SentencePiece-style BPE: llama.cpp rebuilds the merges from scores, always joining the adjacent
    // pair whose result scores highest (leftmost first). A token's score is minus the rank of the first
    // merge that makes it, so llama.cpp merges in the order of tokenizer.json's merges.
    if (model.byte_fallback !== true)
      refuse(
        "it has no byte fallback, and llama.cpp's SentencePiece tokenizer needs a <0xNN> token for every byte",
      );
    const addSpacePrefix = sentencePieceSpacePrefix(json);
    for (let byte = 0; byte < 256; byte++) {
      const name = `<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`;
      const id = idOf.get(name);
      if (id === undefined) refuse(`the byte token ${name} is missing`);
      if (types[id] === TOKEN_TYPE.NORMAL) types[id] = TOKEN_TYPE.BYTE;
    }
    const scores = new Array<number>(tokens.length).fill(0);
    const ranked = new Set<number>();
    merges.forEach(([a, b], rank) => {
      const id = idOf.get(a + b);
      if (id === undefined)
        refuse(`the merge ${JSON.stringify([a, b])} makes a token that is not in the vocabulary`);
      if (!ranked.has(id)) {
        ranked.add(id);
        scores[id] = -rank;
      }
    });
    // Longer tokens no merge makes (llama.cpp would still join them) go after every ranked merge.
    tokens.forEach((token, id) => {
      if (!ranked.has(id) && types[id] === TOKEN_TYPE.NORMAL && [...token].length > 1)
        scores[id] = -(merges.length + id);
      if (types[id] === TOKEN_TYPE.UNUSED) scores[id] = -1000;
    });
    meta.push(['tokenizer.ggml.model', str('llama')], ['tokenizer.ggml.pre', str('default')]);
    meta.push(
      ['tokenizer.ggml.tokens', arr('string', tokens)],
      ['tokenizer.ggml.scores', arr('float32', scores)],
      ['tokenizer.ggml.token_type', arr('int32', types)],
    );
    meta.push(['tokenizer.ggml.add_space_prefix', bool(addSpacePrefix)]);
  }

  // Special tokens: tokenizer_config.json's text, else config.json's id.
  const idFor = (key: string, fallback: number | null): number | null => {
    const text = specialText(config, key);
    if (text !== null) {
      const id = idOf.get(text);
      if (id === undefined)
        refuse(`tokenizer_config.json's ${key} ${JSON.stringify(text)} is not in the vocabulary`);
      return id;
    }
    return fallback;
  };
  const bos = idFor('bos_token', args.bosTokenId);
  const eos = idFor('eos_token', args.eosTokenIds[0] ?? null);
  const unk = unknown !== null ? (idOf.get(unknown) ?? null) : idFor('unk_token', null);
  const pad = idFor('pad_token', null);
  if (bos !== null) meta.push(['tokenizer.ggml.bos_token_id', u32(bos)]);
  if (eos !== null) meta.push(['tokenizer.ggml.eos_token_id', u32(eos)]);
  if (unk !== null) meta.push(['tokenizer.ggml.unknown_token_id', u32(unk)]);
  if (pad !== null) meta.push(['tokenizer.ggml.padding_token_id', u32(pad)]);

  // BOS/EOS as the tokenizer really adds them: its post-processor's template, else tokenizer_config's flags.
  const post = steps(json.post_processor).find((p) => p.type === 'TemplateProcessing');
  const single = post && Array.isArray(post.single) ? (post.single as Json[]) : null;
  const specialAt = (item: Json | undefined) =>
    item && isObject(item.SpecialToken) ? String(item.SpecialToken.id) : null;
  const bosText = bos !== null ? tokens[bos] : null;
  const eosText = eos !== null ? tokens[eos] : null;
  const addBos = single
    ? specialAt(single[0]) !== null && specialAt(single[0]) === bosText
    : config.add_bos_token === true;
  const addEos = single
    ? specialAt(single.at(-1)) !== null && specialAt(single.at(-1)) === eosText
    : config.add_eos_token === true;
  if (
    single &&
    single.some(
      (item, i) => specialAt(item) !== null && !((i === 0 && addBos) || (i === single.length - 1 && addEos)),
    )
  ) {
    refuse('its post-processor adds special tokens other than a leading BOS and a trailing EOS');
  }
  if (addBos && bos === null) refuse('it adds a BOS token that it does not name');
  meta.push(['tokenizer.ggml.add_bos_token', bool(addBos)], ['tokenizer.ggml.add_eos_token', bool(addEos)]);

  const template = config.chat_template;
  if (typeof template === 'string') meta.push(['tokenizer.chat_template', str(template)]);
  else if (Array.isArray(template)) {
    // Named templates: llama.cpp takes the default one as tokenizer.chat_template, others by name.
    for (const t of template) {
      if (!isObject(t) || typeof t.name !== 'string' || typeof t.template !== 'string') continue;
      meta.push([
        t.name === 'default' ? 'tokenizer.chat_template' : `tokenizer.chat_template.${t.name}`,
        str(t.template),
      ]);
    }
  }
  return meta;
}
