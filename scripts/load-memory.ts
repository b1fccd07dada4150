/**
 * Peak memory while loading a model, before and after the weights were read a tensor at a time (issue 22):
 * writes a checkpoint in a real shape (src/bench/shapes.ts) with random bf16 weights to disk, then loads
 * it in a fresh process each way and prints the process's peak RSS. Not a test: it writes gigabytes and takes
 * minutes.
 *
 *   node bin/run-ts.mjs scripts/load-memory.ts [--shape qwen2.5-1.5b] [--weights nf4] [--backend wasm]
 *     [--dir /tmp/webtune-load-memory] [--keep]
 *
 * `bytes` is how the CLI and the page loaded before: the whole model.safetensors in one buffer (the CLI
 * read it with readFileSync, which refuses files over 2 GiB outright; here it is read in pieces into one
 * buffer, as the page's worker did with File.arrayBuffer()), then built. `file` is how they load now: the
 * file opened, its header read, then each tensor's bytes as it is converted.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseModelConfig, type ModelArgs } from '../src/engine/config';
import { loadModel } from '../src/engine/load';
import { disposeModel } from '../src/engine/model';
import type { WeightFormat } from '../src/engine/quant';
import { closeWeights } from '../src/engine/weights-source';
import { SHAPES } from '../src/bench/shapes';
import { chooseBackend } from '../src/node/backends';
import { openModelFolder } from '../src/node/model-folder';

/** Run from the repository's root, as `node bin/run-ts.mjs scripts/load-memory.ts`. */
const ROOT = process.cwd();
const GiB = 2 ** 30;

/** Every tensor of a Hugging Face checkpoint of `args`, in the order transformers saves them. */
function checkpointShapes(args: ModelArgs): [string, number[]][] {
  const { hiddenSize: d, intermediateSize: ff, headDim: hd, vocabSize: vocab } = args;
  const [q, kv] = [args.numHeads * hd, args.numKvHeads * hd];
  const tensors: [string, number[]][] = [['model.embed_tokens.weight', [vocab, d]]];
  for (let i = 0; i < args.numLayers; i++) {
    const p = `model.layers.${i}`;
    tensors.push([`${p}.input_layernorm.weight`, [d]]);
    for (const [name, out] of [
      ['q_proj', q],
      ['k_proj', kv],
      ['v_proj', kv],
    ] as const) {
      tensors.push([`${p}.self_attn.${name}.weight`, [out, d]]);
      if (args.qkvBias) tensors.push([`${p}.self_attn.${name}.bias`, [out]]);
    }
    tensors.push([`${p}.self_attn.o_proj.weight`, [d, q]]);
    if (args.oBias) tensors.push([`${p}.self_attn.o_proj.bias`, [d]]);
    if (args.qkNorm)
      tensors.push([`${p}.self_attn.q_norm.weight`, [hd]], [`${p}.self_attn.k_norm.weight`, [hd]]);
    tensors.push([`${p}.post_attention_layernorm.weight`, [d]]);
    tensors.push([`${p}.mlp.gate_proj.weight`, [ff, d]], [`${p}.mlp.up_proj.weight`, [ff, d]]);
    tensors.push([`${p}.mlp.down_proj.weight`, [d, ff]]);
  }
  tensors.push(['model.norm.weight', [d]]);
  if (!args.tieWordEmbeddings) tensors.push(['lm_head.weight', [vocab, d]]);
  return tensors;
}

/** model.safetensors of random bf16 weights (norms 1), written a piece at a time. */
function writeCheckpoint(dir: string, shape: string): void {
  const config = SHAPES[shape];
  const args = parseModelConfig(config);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...config, torch_dtype: 'bfloat16' }));
  // Any tokenizer of the family loads; the measurement never tokenizes.
  for (const file of ['tokenizer.json', 'tokenizer_config.json'])
    fs.copyFileSync(path.join(ROOT, 'fixtures/models/tiny-random-qwen2', file), path.join(dir, file));
  const tensors = checkpointShapes(args);
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const [name, dims] of tensors) {
    const bytes = dims.reduce((a, b) => a * b, 1) * 2;
    header[name] = { dtype: 'BF16', shape: dims, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = Buffer.from(JSON.stringify(header).padEnd(Math.ceil(JSON.stringify(header).length / 8) * 8));
  const fd = fs.openSync(path.join(dir, 'model.safetensors'), 'w');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  fs.writeSync(fd, prefix);
  fs.writeSync(fd, json);
  let state = 0x9e3779b9;
  const piece = new Uint16Array(8 * 2 ** 20);
  for (const [name, dims] of tensors) {
    let left = dims.reduce((a, b) => a * b, 1);
    const norm = name.endsWith('norm.weight');
    while (left > 0) {
      const n = Math.min(left, piece.length);
      for (let i = 0; i < n; i++) {
        // xorshift32 → a bf16 of magnitude below 2^-5 (exponent 116–122), either sign.
        state ^= state << 13;
        state ^= state >>> 17;
        state ^= state << 5;
        piece[i] = norm ? 0x3f80 : ((state >>> 16) & 0x807f) | ((116 + ((state >>> 8) % 7)) << 7);
      }
      fs.writeSync(fd, new Uint8Array(piece.buffer, 0, n * 2));
      left -= n;
    }
  }
  fs.closeSync(fd);
}

/** The whole file in one buffer, as the loads before this change held it. */
function readWhole(file: string): Uint8Array {
  const fd = fs.openSync(file, 'r');
  const out = new Uint8Array(fs.fstatSync(fd).size);
  for (let at = 0; at < out.length;) at += fs.readSync(fd, out, at, Math.min(out.length - at, 2 ** 28), at);
  fs.closeSync(fd);
  return out;
}

/** One load in this process; prints one JSON line. */
async function measureLoad(dir: string, mode: 'bytes' | 'file', weights: WeightFormat, backend: string) {
  await chooseBackend(backend);
  const started = performance.now();
  const opened = openModelFolder(dir);
  if (mode === 'bytes') closeWeights(opened.weights);
  const files =
    mode === 'bytes' ? { ...opened, weights: readWhole(path.join(dir, 'model.safetensors')) } : opened;
  const loaded = loadModel(files, { weights });
  closeWeights(files.weights);
  const seconds = (performance.now() - started) / 1000;
  const usage = process.memoryUsage();
  console.log(
    JSON.stringify({
      mode,
      weights,
      backend,
      seconds: Math.round(seconds),
      peakRssGiB: +((process.resourceUsage().maxRSS * 1024) / GiB).toFixed(2),
      rssAfterGiB: +(usage.rss / GiB).toFixed(2),
      arrayBuffersAfterGiB: +(usage.arrayBuffers / GiB).toFixed(2),
    }),
  );
  disposeModel(loaded.model);
}

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      shape: { type: 'string', default: 'qwen2.5-1.5b' },
      weights: { type: 'string', default: 'nf4' },
      backend: { type: 'string', default: 'wasm' },
      dir: { type: 'string', default: '/tmp/webtune-load-memory' },
      keep: { type: 'boolean', default: false },
    },
  });
  const dir = path.join(values.dir!, values.shape!);
  const [command, mode] = positionals;
  if (command === 'load') {
    await measureLoad(dir, mode as 'bytes' | 'file', values.weights as WeightFormat, values.backend!);
    return 0;
  }
  if (!fs.existsSync(path.join(dir, 'model.safetensors'))) {
    console.error(`writing ${values.shape} with random bf16 weights to ${dir} …`);
    writeCheckpoint(dir, values.shape!);
  }
  const size = fs.statSync(path.join(dir, 'model.safetensors')).size;
  console.error(`model.safetensors: ${(size / 1e9).toFixed(2)} GB`);
  try {
    for (const each of ['bytes', 'file']) {
      const line = execFileSync(
        process.execPath,
        [path.join(ROOT, 'bin/run-ts.mjs'), path.join(ROOT, 'scripts/load-memory.ts'), 'load', each, ...argv],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 2 ** 20 },
      );
      process.stdout.write(
        line
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .join('\n') + '\n',
      );
    }
  } finally {
    if (!values.keep) fs.rmSync(dir, { recursive: true, force: true });
  }
  return 0;
}
