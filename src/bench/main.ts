/**
 * `npm run bench [-- --json] [--backends wasm,cpu,webgpu] [--models stories260K,smollm2-135m-4l,smollm2-135m,qwen2.5-0.5b]
 *   [--seq N] [--batch B] [--steps S] [--decode-tokens D] [--checkpoint on|off]`
 * Training and decoding throughput and peak tensor memory of the engine per model and backend. A
 * benchmark, not a test: it measures and reports, it asserts nothing.
 */
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { readModelFolder } from '../cli/model-folder';
import { chooseBackend } from '../cli/node-backends';
import type { Batch } from '../engine/batch';
import { parameterCount, parseModelConfig, type ModelArgs } from '../engine/config';
import { generate } from '../engine/generate';
import { loadModel } from '../engine/load';
import { attachLora, detachLora, peftInit } from '../engine/lora';
import { disposeModel, type LlamaModel } from '../engine/model';
import { createRng } from '../engine/random';
import { tf } from '../engine/tf';
import { Trainer } from '../engine/train';
import { buildModel } from '../engine/weights';

const SHARED = process.env.WEBTUNE_SHARED ?? path.resolve(process.cwd(), '..', 'shared');

/** SmolLM2-135M's config.json (30 layers), as published; random weights (nothing can be downloaded here). */
const SMOLLM2_135M = {
  model_type: 'llama', hidden_size: 576, intermediate_size: 1536, num_hidden_layers: 30, num_attention_heads: 9,
  num_key_value_heads: 3, vocab_size: 49152, rms_norm_eps: 1e-5, rope_theta: 100000, max_position_embeddings: 8192,
  tie_word_embeddings: true, bos_token_id: 1, eos_token_id: 2,
};

/** Qwen2.5-0.5B's config.json: 24 layers, q/k/v bias, a 151,936-token vocabulary tied to the embedding. */
const QWEN25_05B = {
  model_type: 'qwen2', hidden_size: 896, intermediate_size: 4864, num_hidden_layers: 24, num_attention_heads: 14,
  num_key_value_heads: 2, vocab_size: 151936, rms_norm_eps: 1e-6, rope_theta: 1000000, max_position_embeddings: 32768,
  tie_word_embeddings: true, bos_token_id: 151643, eos_token_id: 151645,
};

/** Models in real shapes with random weights; the 4-layer SmolLM2 keeps earlier figures comparable. */
const SHAPES: Record<string, object> = {
  'smollm2-135m-4l': { ...SMOLLM2_135M, num_hidden_layers: 4, max_position_embeddings: 2048 },
  'smollm2-135m': SMOLLM2_135M,
  'qwen2.5-0.5b': QWEN25_05B,
  // Qwen2.5-0.5B at batch 4 × 256 outgrows the 4 GiB wasm heap; 4 of its layers show the rest of its peak.
  'qwen2.5-0.5b-4l': { ...QWEN25_05B, num_hidden_layers: 4 },
};

export interface BenchResult {
  model: string;
  backend: string;
  params: number;
  seq: number;
  batch: number;
  checkpoint: boolean;
  train_tokens_per_s: number;
  train_seconds_per_step: number;
  decode_tokens_per_s: number;
  peak_bytes: number;
}

function randomModel(args: ModelArgs, seed: number): LlamaModel {
  const rng = createRng(seed);
  return buildModel(args, (name, shape) => {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (name.endsWith('norm.weight')) data.fill(1);
    else for (let i = 0; i < data.length; i++) data[i] = (rng.next() - 0.5) * 0.04;
    return { shape, data };
  });
}

function openModel(name: string): { model: LlamaModel; vocab: number } {
  if (SHAPES[name]) {
    const args = parseModelConfig(SHAPES[name]);
    return { model: randomModel(args, 1), vocab: args.vocabSize };
  }
  const loaded = loadModel(readModelFolder(path.join(SHARED, 'models', name)));
  return { model: loaded.model, vocab: loaded.args.vocabSize };
}

function syntheticBatch(vocab: number, batchSize: number, seq: number, seed: number): Batch {
  const rng = createRng(seed);
  const ids = Int32Array.from({ length: batchSize * seq }, () => 3 + Math.floor(rng.next() * (vocab - 3)));
  return { ids, targetMask: new Float32Array(ids.length).fill(1), attentionMask: new Float32Array(ids.length).fill(1), batchSize, seqLength: seq };
}

async function benchOne(modelName: string, backend: string, o: { seq: number; batch: number; steps: number; decode: number; checkpoint: boolean }): Promise<BenchResult> {
  const choice = await chooseBackend(backend);
  const { model, vocab } = openModel(modelName);
  const adapter = attachLora(model, { rank: 8, alpha: 16, dropout: 0, targets: ['q_proj', 'v_proj'], useRslora: false }, peftInit(0));
  const batches = Array.from({ length: o.steps + 1 }, (_, i) => syntheticBatch(vocab, o.batch, o.seq, i));
  const trainer = new Trainer(model, adapter, { epochBatches: () => batches, validation: [] }, {
    learningRate: 1e-3, epochs: 1, gradAccum: 1, warmupSteps: 0, maxGradNorm: 1, weightDecay: 0, seed: 0, checkpoint: o.checkpoint,
  });
  // The first step compiles shaders / warms caches; it is measured for memory only.
  const profile = await tf.profile(async () => {
    await trainer.trainStep();
  });
  const started = performance.now();
  for (let i = 0; i < o.steps; i++) await trainer.trainStep();
  const trainSeconds = (performance.now() - started) / 1000;
  trainer.dispose();

  const prompt = Array.from(syntheticBatch(vocab, 1, 16, 99).ids);
  const stamps: number[] = [];
  await generate(model, prompt, { maxNewTokens: o.decode, eosTokenIds: [], onToken: () => stamps.push(performance.now()) });
  const decodeSeconds = (stamps[stamps.length - 1] - stamps[0]) / 1000;

  detachLora(model, adapter);
  disposeModel(model);
  return {
    model: modelName,
    backend: choice.backend,
    params: parameterCount(model.args),
    seq: o.seq,
    batch: o.batch,
    checkpoint: o.checkpoint,
    train_tokens_per_s: Math.round((o.steps * o.batch * o.seq) / trainSeconds),
    train_seconds_per_step: Math.round((trainSeconds / o.steps) * 100) / 100,
    decode_tokens_per_s: Math.round(((stamps.length - 1) / decodeSeconds) * 10) / 10,
    peak_bytes: profile.peakBytes,
  };
}

export async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      json: { type: 'boolean' },
      backends: { type: 'string', default: 'wasm,cpu,webgpu' },
      models: { type: 'string', default: 'stories260K,smollm2-135m-4l' },
      steps: { type: 'string', default: '3' },
      seq: { type: 'string', default: '128' },
      batch: { type: 'string', default: '4' },
      checkpoint: { type: 'string', default: 'on' },
      'decode-tokens': { type: 'string', default: '32' },
    },
  });
  const number = (flag: 'seq' | 'batch' | 'steps' | 'decode-tokens', min: number) => {
    const n = Number(values[flag]);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${flag} must be a whole number of at least ${min} (got "${values[flag]}").`);
    return n;
  };
  if (!['on', 'off'].includes(values.checkpoint!)) throw new Error(`--checkpoint must be on or off (got "${values.checkpoint}").`);
  const options = { seq: number('seq', 2), batch: number('batch', 1), steps: number('steps', 1), decode: number('decode-tokens', 2), checkpoint: values.checkpoint === 'on' };
  const results: BenchResult[] = [];
  for (const modelName of values.models!.split(',')) {
    for (const backend of values.backends!.split(',')) {
      let r: BenchResult;
      try {
        r = await benchOne(modelName, backend, options);
      } catch (error) {
        process.stderr.write(`${modelName} on ${backend}: skipped (${(error as Error).message})\n`);
        continue;
      }
      results.push(r);
      process.stderr.write(`${r.model} on ${r.backend}, ${r.batch}×${r.seq}, checkpoint ${r.checkpoint ? 'on' : 'off'}: train ${r.train_tokens_per_s} tok/s (${r.train_seconds_per_step} s/step), decode ${r.decode_tokens_per_s} tok/s, peak ${(r.peak_bytes / 2 ** 20).toFixed(1)} MiB\n`);
    }
  }
  const machine = { cpus: os.cpus().length, cpu_model: os.cpus()[0]?.model ?? '', node: process.version };
  if (values.json) process.stdout.write(JSON.stringify({ machine, results }) + '\n');
  return 0;
}
