/**
 * A model folder in SmolLM2-135M's real shape (its published config.json: 30 layers, hidden 576, 9 heads,
 * 3 KV heads, MLP 1536, a 49,152-token vocabulary tied to the embedding) with random weights in bfloat16,
 * and a ChatML byte-level BPE tokenizer trained here, written into a temporary folder for the Hub double to
 * serve. Nothing of it is committed: about 270 MB of weights are made in a few seconds.
 *
 * The tokenizer has exactly the config's 49,152 ids, as SmolLM2's has: the three special tokens first (as
 * SmolLM2 numbers <|endoftext|>, <|im_start|> and <|im_end|>), then the 256 byte tokens, the merges learned
 * from `corpus`, and filler tokens no merge reaches (so every id the random model can sample decodes to
 * text, as with a real vocabulary).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SHAPES } from '../../src/bench/run';
import { byteAlphabet, CHATML_TEMPLATE, tokenizerJson, trainByteBpe, type ByteBpe } from './byte-bpe';

export const SPECIALS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'];

/** SmolLM2-135M's config.json as the bench has it, with the token ids of the tokenizer below. */
export const REAL_SHAPE_CONFIG = {
  ...(SHAPES['smollm2-135m'] as { vocab_size: number; [key: string]: unknown }),
  architectures: ['LlamaForCausalLM'],
  hidden_act: 'silu',
  bos_token_id: 1,
  eos_token_id: 2,
  pad_token_id: 2,
};

/** The vocabulary: specials at 0..2, bytes and merges after them, fillers up to `size`. */
export function realShapeVocabulary(corpus: string, merges: number, size: number): ByteBpe {
  const trained = trainByteBpe(corpus, 256 + merges + SPECIALS.length, SPECIALS);
  const vocab: Record<string, number> = {};
  SPECIALS.forEach((s, i) => (vocab[s] = i));
  const ordinary = Object.entries(trained.vocab)
    .filter(([token]) => !SPECIALS.includes(token))
    .sort((a, b) => a[1] - b[1]);
  let next = SPECIALS.length;
  for (const [token] of ordinary) vocab[token] = next++;
  // Fillers: letters of the byte alphabet after a marker no merge makes ("ĠĠ" + 'q' + base-26 digits).
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  const space = byteAlphabet()[0x20];
  for (let n = 0; next < size; n++) {
    let word = '';
    for (let k = n; ; k = Math.floor(k / 26) - 1) {
      word = letters[k % 26] + word;
      if (k < 26) break;
    }
    const token = `${space}${space}q${word}`;
    if (vocab[token] === undefined) vocab[token] = next++;
  }
  return {
    vocab,
    merges: trained.merges,
    specials: SPECIALS.map((content, id) => ({ content, id })),
  };
}

/** xorshift32: fast enough for 135 M values. */
function randomBits(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

/** The tensors of a Llama-family checkpoint in this shape, in the order a checkpoint lists them. */
function tensorShapes(config: typeof REAL_SHAPE_CONFIG): [string, number[]][] {
  const c = config as unknown as Record<string, number>;
  const hidden = c.hidden_size;
  const headDim = hidden / c.num_attention_heads;
  const q = c.num_attention_heads * headDim;
  const kv = c.num_key_value_heads * headDim;
  const mlp = c.intermediate_size;
  const out: [string, number[]][] = [['model.embed_tokens.weight', [c.vocab_size, hidden]]];
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    out.push(
      [`${p}.input_layernorm.weight`, [hidden]],
      [`${p}.self_attn.q_proj.weight`, [q, hidden]],
      [`${p}.self_attn.k_proj.weight`, [kv, hidden]],
      [`${p}.self_attn.v_proj.weight`, [kv, hidden]],
      [`${p}.self_attn.o_proj.weight`, [hidden, q]],
      [`${p}.post_attention_layernorm.weight`, [hidden]],
      [`${p}.mlp.gate_proj.weight`, [mlp, hidden]],
      [`${p}.mlp.up_proj.weight`, [mlp, hidden]],
      [`${p}.mlp.down_proj.weight`, [hidden, mlp]],
    );
  }
  out.push(['model.norm.weight', [hidden]]);
  return out;
}

/**
 * model.safetensors in bfloat16, written tensor by tensor: norms are 1, everything else uniform with a
 * standard deviation of 0.02 (as the model was initialised before training). The bf16 bits are made
 * directly: the top half of the float32.
 */
function writeWeights(file: string, config: typeof REAL_SHAPE_CONFIG, seed: number): void {
  const tensors = tensorShapes(config);
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const [name, shape] of tensors) {
    const bytes = shape.reduce((a, b) => a * b, 1) * 2;
    header[name] = { dtype: 'BF16', shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json = json.padEnd(Math.ceil(json.length / 8) * 8, ' ');
  const fd = fs.openSync(file, 'w');
  try {
    const prefix = Buffer.alloc(8);
    prefix.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
    fs.writeSync(fd, prefix);
    fs.writeSync(fd, json);
    const next = randomBits(seed);
    const f32 = new Float32Array(1);
    const u32 = new Uint32Array(f32.buffer);
    const spread = 0.02 * Math.sqrt(12);
    for (const [name, shape] of tensors) {
      const count = shape.reduce((a, b) => a * b, 1);
      const out = new Uint16Array(count);
      if (name.endsWith('norm.weight')) {
        f32[0] = 1;
        out.fill(u32[0] >>> 16);
      } else {
        for (let i = 0; i < count; i++) {
          f32[0] = (next() / 4294967296 - 0.5) * spread;
          out[i] = u32[0] >>> 16;
        }
      }
      fs.writeSync(fd, new Uint8Array(out.buffer));
    }
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Writes config.json, tokenizer.json, tokenizer_config.json, a model card (README.md) and model.safetensors
 * into a new temporary folder and returns it; the caller removes it.
 */
export function writeRealShapeModel(options: { corpus: string; merges?: number; seed?: number }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-real-shape-'));
  const config = REAL_SHAPE_CONFIG;
  const bpe = realShapeVocabulary(options.corpus, options.merges ?? 600, config.vocab_size);
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2));
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(tokenizerJson(bpe, 'smollm', 'strings')));
  fs.writeFileSync(
    path.join(dir, 'tokenizer_config.json'),
    JSON.stringify(
      {
        // As SmolLM2-135M-Instruct's.
        add_prefix_space: false,
        added_tokens_decoder: Object.fromEntries(
          bpe.specials.map((s) => [
            String(s.id),
            {
              content: s.content,
              lstrip: false,
              normalized: false,
              rstrip: false,
              single_word: false,
              special: true,
            },
          ]),
        ),
        additional_special_tokens: ['<|im_start|>', '<|im_end|>'],
        bos_token: '<|im_start|>',
        chat_template: CHATML_TEMPLATE,
        clean_up_tokenization_spaces: false,
        eos_token: '<|im_end|>',
        model_max_length: 8192,
        pad_token: '<|im_end|>',
        tokenizer_class: 'GPT2Tokenizer',
        unk_token: '<|endoftext|>',
        vocab_size: config.vocab_size,
      },
      null,
      2,
    ),
  );
  // A model card, as every Hub repo has (the page reads its license; a missing one is a 404 in the console).
  fs.writeFileSync(
    path.join(dir, 'README.md'),
    "---\nlicense: apache-2.0\nlibrary_name: transformers\n---\n\n# SmolLM2-135M in shape only\n\nRandom weights in SmolLM2-135M's shape, for tests.\n",
  );
  writeWeights(path.join(dir, 'model.safetensors'), config, options.seed ?? 1);
  return dir;
}
