/**
 * `npm run bench [-- --json] [--backends wasm,cpu,webgpu] [--models
 * stories260K,smollm2-135m-4l,smollm2-135m,qwen2.5-0.5b]   [--browser [--wasm-threads N]] [--seq N] [--batch
 * B] [--steps S] [--decode-tokens D] [--recompute on|off] [--fused on|off] [--dropout P] [--weights
 * f32|bf16|f16|q8_0|nf4] [--profile]`
 * Training and decoding throughput and peak tensor memory of the engine per model and backend, training the
 * default run (Quick try preset, LoRA dropout from the run defaults; `--dropout 0` for a run without it, as
 * scripts/bench_torch.py trains). A benchmark, not a test: it
 * measures and reports, it asserts nothing. `--profile` adds the time of every kernel of one training step.
 * `--browser` runs the same benchmark in headless Chromium (see browser.ts). On webgpu it counts one step's
 * dispatches, uploads and readbacks; `--fused off` measures the plain tfjs ops in place of webtune's WGSL
 * kernels and fused projections. `--weights` holds the frozen base in 16, 8 or 4 bits (weights.ts); on
 * wasm the JSON's heap_bytes is the wasm heap after the measured steps.
 */
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { RUN_DEFAULTS } from '../data/defaults';
import { readEnvironment } from '../node/environment';
import { readModelFolder } from '../node/model-folder';
import { chooseBackend } from '../node/backends';
import { loadModel } from '../engine/load';
import type { LlamaModel } from '../engine/model';
import type { WeightFormat } from '../engine/quant';
import { benchInBrowser } from './browser';
import { formatProfile } from './profile';
import {
  buildOptionsFor,
  describeAdapter,
  measure,
  SHAPES,
  shapedModel,
  type BenchOptions,
  type BenchResult,
} from './run';

const MODELS = readEnvironment().modelsDir;

/** What `--weights` takes: BuildOptions.weights. */
const WEIGHT_FORMATS: readonly WeightFormat[] = ['f32', 'bf16', 'f16', 'q8_0', 'nf4'];

function openModel(name: string, options: BenchOptions): LlamaModel {
  if (SHAPES[name]) return shapedModel(name, buildOptionsFor(options));
  return loadModel(readModelFolder(path.join(MODELS, name)), buildOptionsFor(options)).model;
}

async function benchOne(modelName: string, backend: string, options: BenchOptions): Promise<BenchResult> {
  const choice = await chooseBackend(backend);
  const measured = await measure(modelName, openModel(modelName, options), options);
  const adapter = describeAdapter(choice);
  return {
    ...measured,
    backend: choice.backend,
    where: 'node',
    threads: choice.threads ?? 1,
    ...(adapter ? { adapter } : {}),
  };
}

export function describe(r: BenchResult): string {
  const head = `${r.model} on ${r.backend}${r.adapter ? ` [${r.adapter}]` : ''} (${r.where}, ${r.threads} thread${r.threads === 1 ? '' : 's'}), weights ${r.weights}, ${r.batch}×${r.seq}, recompute ${r.recompute ? 'on' : 'off'}, dropout ${r.dropout}`;
  const speed = `train ${r.train_tokens_per_s} tok/s (${r.train_seconds_per_step} s/step, ${r.train_gflops} GFLOP/s), decode ${r.decode_tokens_per_s} tok/s (${r.decode_gflops} GFLOP/s)`;
  const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  const heap = r.heap_bytes === null ? '' : `, wasm heap ${mib(r.heap_bytes)}`;
  const line = `${head}: ${speed}, peak ${mib(r.peak_bytes)}${heap}; one large matMul ${r.matmul_peak_gflops} GFLOP/s`;
  if (!r.gpu) return line;
  const g = r.gpu;
  const kib = (bytes: number) => (bytes < 1024 ? `${bytes} B` : `${(bytes / 1024).toFixed(1)} KiB`);
  return (
    `${line}\n  one step on the GPU (fused kernels ${g.fused_kernels ? 'on' : 'off'}): ${g.dispatches} dispatches (${g.dispatches_per_layer} per decoder layer), ` +
    `${g.uploads} uploads (${kib(g.uploadedBytes)} with uniforms), ${g.readbacks} readback${g.readbacks === 1 ? '' : 's'} (${kib(g.readbackBytes)})`
  );
}

export const BENCH_HELP = `npm run bench -- [options]   (or node bin/bench.mjs [options])

Training and decoding speed and peak memory of the engine, per model and backend. It measures and reports;
it asserts nothing. The models in their real shapes use random weights (nothing is downloaded).
  --models LIST        ${Object.keys(SHAPES).join(', ')}
                       or a folder name under the models directory (default stories260K,smollm2-135m-4l)
  --backends LIST      wasm, cpu, webgpu (default all three; webgpu here is SwiftShader: correct, not fast)
  --weights FORMAT     f32, bf16, f16, q8_0 or nf4: how the frozen base is held (default f32)
  --batch B --seq N    examples and tokens per step (default ${RUN_DEFAULTS.batchSize} × 128)
  --steps S            steps measured after one warm-up step (default 3)
  --decode-tokens D    tokens decoded for the decoding speed (default 32)
  --recompute on|off   recompute each layer's activations in the backward pass (default on)
  --fused on|off       webtune's WGSL kernels and fused projections on webgpu (default on)
  --dropout P          LoRA dropout (default ${RUN_DEFAULTS.dropout}, the run default)
  --profile            the time of every kernel of one training step
  --browser            the same in headless Chromium (--wasm-threads N there)
  --json               one JSON object per result on stdout`;

export async function main(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(BENCH_HELP + '\n');
    return 0;
  }
  let settings;
  try {
    settings = benchSettings(argv);
  } catch (error) {
    process.stderr.write(
      `bench: ${(error as Error).message.replace(/\.$/, '')} (see npm run bench -- --help)\n`,
    );
    return 2;
  }
  return runBench(settings);
}

function benchSettings(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      json: { type: 'boolean' },
      browser: { type: 'boolean' },
      profile: { type: 'boolean' },
      backends: { type: 'string', default: 'wasm,cpu,webgpu' },
      models: { type: 'string', default: 'stories260K,smollm2-135m-4l' },
      steps: { type: 'string', default: '3' },
      seq: { type: 'string', default: '128' },
      batch: { type: 'string', default: String(RUN_DEFAULTS.batchSize) },
      recompute: { type: 'string', default: 'on' },
      fused: { type: 'string', default: 'on' },
      'decode-tokens': { type: 'string', default: '32' },
      dropout: { type: 'string', default: String(RUN_DEFAULTS.dropout) },
      weights: { type: 'string', default: 'f32' },
      'wasm-threads': { type: 'string' },
    },
  });
  const number = (flag: 'seq' | 'batch' | 'steps' | 'decode-tokens' | 'wasm-threads', min: number) => {
    const n = Number(values[flag]);
    if (!Number.isInteger(n) || n < min)
      throw new Error(`--${flag} must be a whole number of at least ${min} (got "${values[flag]}").`);
    return n;
  };
  for (const flag of ['recompute', 'fused'] as const) {
    if (!['on', 'off'].includes(values[flag]!))
      throw new Error(`--${flag} must be on or off (got "${values[flag]}").`);
  }
  const dropout = Number(values.dropout);
  if (!(dropout >= 0 && dropout < 1))
    throw new Error(`--dropout must be at least 0 and below 1 (got "${values.dropout}").`);
  const weights = values.weights as WeightFormat;
  if (!WEIGHT_FORMATS.includes(weights))
    throw new Error(`--weights must be one of ${WEIGHT_FORMATS.join(', ')} (got "${values.weights}").`);
  const options: BenchOptions = {
    seq: number('seq', 2),
    batch: number('batch', 1),
    steps: number('steps', 1),
    decode: number('decode-tokens', 2),
    recompute: values.recompute === 'on',
    profile: values.profile,
    fusedKernels: values.fused === 'on',
    dropout,
    weights,
  };
  // In Node wasm has one thread whatever is asked (see README, Benchmark).
  if (values['wasm-threads'] !== undefined && !values.browser)
    throw new Error('--wasm-threads needs --browser: in Node wasm runs on one thread.');
  const wasmThreads = values['wasm-threads'] === undefined ? undefined : number('wasm-threads', 1);
  return {
    options,
    wasmThreads,
    models: values.models!.split(','),
    backends: values.backends!.split(','),
    browser: values.browser === true,
    json: values.json === true,
  };
}

async function runBench({
  options,
  wasmThreads,
  models,
  backends,
  browser,
  json,
}: ReturnType<typeof benchSettings>): Promise<number> {
  const results: BenchResult[] = [];
  const report = (r: BenchResult) => {
    results.push(r);
    process.stderr.write(describe(r) + '\n');
    if (r.profile) process.stderr.write(formatProfile(r.profile) + '\n');
  };
  const skipped = (modelName: string, backend: string, message: string) =>
    process.stderr.write(`${modelName} on ${backend}: skipped (${message})\n`);
  const machine: Record<string, string | number> = {
    cpus: os.cpus().length,
    cpu_model: os.cpus()[0]?.model ?? '',
    node: process.version,
  };
  if (browser) {
    Object.assign(
      machine,
      await benchInBrowser(
        { models, backends, options, wasmThreads },
        { onResult: report, onSkipped: skipped },
      ),
    );
  } else {
    for (const modelName of models) {
      for (const backend of backends) {
        try {
          report(await benchOne(modelName, backend, options));
        } catch (error) {
          skipped(modelName, backend, (error as Error).message);
        }
      }
    }
  }
  if (json) process.stdout.write(JSON.stringify({ machine, results }) + '\n');
  return 0;
}
