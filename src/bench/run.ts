/**
 * The benchmark itself, free of Node and of the DOM: the same code measures the engine in Node
 * (src/bench/main.ts) and in a browser's Web Worker (`--browser`). Models come in real shapes with
 * random weights (nothing can be downloaded here), or as an already loaded model.
 */
import type { BackendChoice } from '../engine/backend';
import type { Batch } from '../engine/batch';
import { parameterCount, type ModelArgs } from '../engine/config';
import { decodeTokenFlops, trainingStepFlops } from '../engine/flops';
import { matMulGflops } from '../engine/speed';
import { generate } from '../engine/generate';
import { detachLora } from '../engine/lora';
import { disposeModel, type LlamaModel } from '../engine/model';
import { createRng } from '../engine/random';
import { tf } from '../engine/tf';
import { batchLossSum } from '../engine/train';
import { countGpuWork, type GpuCounts } from '../engine/webgpu/counters';
import { fusedKernels } from '../engine/webgpu/program';
import type { FrozenMatrix } from '../engine/frozen';
import { Linear, LinearPart, type Projection } from '../engine/layers';
import type { WeightFormat } from '../engine/quant';
import type { BuildOptions } from '../engine/weights';
import { summarizeKernels, type Kernel, type KernelTime } from './profile';
import { runDefaults } from '../data/defaults';
import type { PresetName } from '../data/presets';
import { setUpTrainer, type RunSettings } from '../data/trainer-setup';

export { randomModel, SHAPES, shapedModel } from './shapes';

export interface BenchOptions {
  seq: number;
  batch: number;
  steps: number;
  decode: number;
  recompute: boolean;
  /** Also time every kernel of one training step (tf.profile), which slows that step down. */
  profile?: boolean;
  /**
   * webgpu: use webtune's fused WGSL kernels and fused projections (default); off measures the plain tfjs ops
   * they replace.
   */
  fusedKernels?: boolean;
  /**
   * LoRA dropout; absent: the default run's (RUN_DEFAULTS.dropout). 0 measures a run without it, as
   * scripts/bench_torch.py trains, where LoRA's A's share one product (see applyShared).
   */
  dropout?: number;
  /** How the frozen base weights are held (BuildOptions.weights); absent: f32. */
  weights?: WeightFormat;
}

/** The preset the bench trains with: rank 8 on q_proj and v_proj, which scripts/bench_torch.py builds too. */
export const BENCH_PRESET: PresetName = 'quick';

/**
 * The run the bench times: the default run a person starts with the Quick try preset (dropout and every
 * other setting from the run defaults), over one epoch of the bench's batches, without warm-up (the
 * learning rate does not change a step's cost; no warm-up keeps it from mattering at all).
 */
export function benchRun(
  args: ModelArgs,
  o: Pick<BenchOptions, 'batch' | 'recompute' | 'dropout'>,
): RunSettings {
  const defaults = runDefaults(
    { trainExamples: null, tokens: null, parameters: parameterCount(args) },
    BENCH_PRESET,
  );
  return {
    ...defaults,
    dropout: o.dropout ?? defaults.dropout,
    batchSize: o.batch,
    epochs: 1,
    warmupSteps: 0,
    recompute: o.recompute ? 'on' : 'off',
  };
}

/** What one model on one backend measured; where it ran and on how many threads are added by the caller. */
export interface Measurement {
  model: string;
  params: number;
  seq: number;
  batch: number;
  recompute: boolean;
  /** The run's preset and LoRA dropout (with dropout, each adapter has its own mask: no shared A). */
  preset: PresetName;
  dropout: number;
  /** How the model's frozen decoder projections are held (its layers' matrices' format). */
  weights: WeightFormat;
  /** What the frozen weights hold (packed matrices' bytes, float32 tensors' bytes), over the parameters. */
  frozen_bytes_per_weight: number;
  train_tokens_per_s: number;
  train_seconds_per_step: number;
  decode_tokens_per_s: number;
  peak_bytes: number;
  /**
   * On wasm: the wasm heap (its WebAssembly.Memory) after the measured steps. A heap never shrinks, so this
   * is what the tab holds for the engine: tensors, XNNPACK's packed copies of right operands, and the
   * allocator's slack. null on other backends.
   */
  heap_bytes: number | null;
  /** Achieved GFLOP/s of the products (src/engine/flops.ts counts them) while training and decoding. */
  train_gflops: number;
  decode_gflops: number;
  /** GFLOP/s of one large product on this backend: the ceiling the two above read against. */
  matmul_peak_gflops: number;
  /** Per-kernel time of one training step, costliest first (with --profile). */
  profile?: KernelTime[];
  /** On webgpu: the GPU traffic of one training step (after the warm-up step). */
  gpu?: GpuStepCounts;
}

export interface GpuStepCounts extends GpuCounts {
  /**
   * Dispatches of one decoder layer's forward and backward pass (recomputed layers: and the recomputation):
   * the difference between a loss-and-gradient pass through the first layer twice and through it once.
   * The optimizer's per-layer work is not in it.
   */
  dispatches_per_layer: number;
  fused_kernels: boolean;
}

export interface BenchResult extends Measurement {
  backend: string;
  where: 'node' | 'browser';
  threads: number;
  /** webgpu only: the adapter, and whether it is a software fallback (SwiftShader). */
  adapter?: string;
}

/**
 * The GPU adapter in a few words, saying when it is software (SwiftShader), whose figures say nothing of a
 * GPU.
 */
export function describeAdapter(choice: BackendChoice): string | undefined {
  const adapter = choice.adapter;
  if (choice.backend !== 'webgpu' || !adapter) return undefined;
  const name =
    [adapter.vendor, adapter.architecture, adapter.description].filter(Boolean).join(' ') ||
    'unnamed adapter';
  return adapter.isFallbackAdapter ? `${name}, a software fallback, not a GPU` : name;
}

/**
 * How the bench builds a model: `--fused off` also keeps q/k/v and gate/up as separate products; `--weights`
 * holds the frozen weights in that format.
 */
export function buildOptionsFor(o: BenchOptions): BuildOptions {
  return {
    ...(o.fusedKernels === false ? { fuseProjections: false } : {}),
    ...(o.weights ? { weights: o.weights } : {}),
  };
}

/**
 * The bytes of the wasm heap (the module's WebAssembly.Memory), or null off wasm. tfjs-backend-wasm's
 * Emscripten module keeps the memory as `wasmMemory` (threaded builds) or its instance's exports
 * (`asm.memory`); HEAPU8 is a view of it, current after every growth on the thread that grew it.
 */
export function wasmHeapBytes(): number | null {
  if (tf.getBackend() !== 'wasm') return null;
  const wasm = (
    tf.backend() as unknown as {
      wasm: { wasmMemory?: WebAssembly.Memory; asm?: { memory?: WebAssembly.Memory }; HEAPU8: Uint8Array };
    }
  ).wasm;
  const memory = wasm.wasmMemory ?? wasm.asm?.memory;
  return memory ? memory.buffer.byteLength : wasm.HEAPU8.buffer.byteLength;
}

const isFrozen = (x: object): x is FrozenMatrix => 'format' in x && 'bytes' in x;

/** The frozen matrix under a projection (through any adapter wrapped around it). */
function matrixOf(p: Projection): FrozenMatrix | undefined {
  if (p instanceof Linear) return p.matrix;
  if (p instanceof LinearPart) return p.whole.matrix;
  return p.base ? matrixOf(p.base) : undefined;
}

/** The format of the model's decoder projections, and what its frozen weights hold per parameter. */
export function frozenWeights(model: LlamaModel): { format: WeightFormat; bytesPerWeight: number } {
  let bytes = 0;
  for (const owned of model.owned) {
    if (isFrozen(owned)) bytes += owned.bytes;
    else if (owned instanceof tf.Tensor) bytes += owned.size * 4;
  }
  return {
    format: matrixOf(model.layers[0].self_attn.o_proj)?.format ?? 'f32',
    bytesPerWeight: Math.round((bytes / parameterCount(model.args)) * 1000) / 1000,
  };
}

function syntheticBatch(vocab: number, batchSize: number, seq: number, seed: number): Batch {
  const rng = createRng(seed);
  const ids = Int32Array.from({ length: batchSize * seq }, () => 3 + Math.floor(rng.next() * (vocab - 3)));
  return {
    ids,
    targetMask: new Float32Array(ids.length).fill(1),
    attentionMask: new Float32Array(ids.length).fill(1),
    batchSize,
    seqLength: seq,
  };
}

/** Trains `steps` steps (after one warm-up step) and decodes `decode` tokens; disposes the model. */
export async function measure(name: string, model: LlamaModel, o: BenchOptions): Promise<Measurement> {
  const vocab = model.args.vocabSize;
  const frozen = frozenWeights(model);
  const run = benchRun(model.args, o);
  const batches = Array.from({ length: o.steps + 2 }, (_, i) => syntheticBatch(vocab, o.batch, o.seq, i));
  // Set up exactly as the CLI and the page's worker set a run up.
  const { trainer, adapter, lora } = setUpTrainer(
    { model, args: model.args, name },
    {
      epochBatches: () => batches,
      validation: [],
    },
    run,
  );
  const fusedBefore = fusedKernels.enabled;
  fusedKernels.enabled = o.fusedKernels ?? true;
  try {
    // The first step compiles shaders / warms caches; it is measured for memory only.
    const memory = await tf.profile(async () => {
      await trainer.trainStep();
    });
    const onGpu = tf.getBackend() === 'webgpu';
    let gpuCounts: GpuCounts | undefined;
    const started = performance.now();
    for (let i = 0; i < o.steps; i++) {
      // Counting wraps a few backend methods with an increment: no cost worth leaving the step out of the
      // timing.
      if (onGpu && i === 0) gpuCounts = (await countGpuWork(() => trainer.trainStep())).counts;
      else await trainer.trainStep();
    }
    const trainSeconds = (performance.now() - started) / 1000;
    const heapBytes = wasmHeapBytes();
    const gpu = gpuCounts
      ? {
          ...gpuCounts,
          dispatches_per_layer: await dispatchesPerLayer(model, batches[0], o.recompute, lora.dropout > 0),
          fused_kernels: fusedKernels.enabled,
        }
      : undefined;
    const profile = o.profile ? summarizeKernels(await profileStep(() => trainer.trainStep())) : undefined;

    const prompt = Array.from(syntheticBatch(vocab, 1, 16, 99).ids);
    const stamps: number[] = [];
    await generate(model, prompt, {
      maxNewTokens: o.decode,
      eosTokenIds: [],
      onToken: () => stamps.push(performance.now()),
    });
    const decodeSeconds = (stamps[stamps.length - 1] - stamps[0]) / 1000;
    const stepFlops = trainingStepFlops(model.args, {
      batch: o.batch,
      steps: o.seq - 1,
      lossRows: o.batch * (o.seq - 1),
      rank: lora.rank,
      targets: lora.targets,
      recompute: o.recompute,
    });
    // Decoding runs at contexts 16 (the prompt) to 16 + decode; the middle one stands for them all.
    const tokenFlops = decodeTokenFlops(model.args, 16 + o.decode / 2);
    return {
      model: name,
      params: parameterCount(model.args),
      seq: o.seq,
      batch: o.batch,
      recompute: o.recompute,
      preset: BENCH_PRESET,
      dropout: lora.dropout,
      weights: frozen.format,
      frozen_bytes_per_weight: frozen.bytesPerWeight,
      train_tokens_per_s: Math.round((o.steps * o.batch * o.seq) / trainSeconds),
      train_seconds_per_step: Math.round((trainSeconds / o.steps) * 100) / 100,
      decode_tokens_per_s: Math.round(((stamps.length - 1) / decodeSeconds) * 10) / 10,
      peak_bytes: memory.peakBytes,
      heap_bytes: heapBytes,
      train_gflops: round1((o.steps * stepFlops) / trainSeconds / 1e9),
      decode_gflops: round1(((stamps.length - 1) * tokenFlops) / decodeSeconds / 1e9),
      matmul_peak_gflops: round1(await matMulGflops()),
      ...(profile ? { profile } : {}),
      ...(gpu ? { gpu } : {}),
    };
  } finally {
    fusedKernels.enabled = fusedBefore;
    trainer.dispose();
    detachLora(model, adapter);
    disposeModel(model);
  }
}

/** One decimal, or three significant digits below 1 (SwiftShader runs at hundredths of a GFLOP/s). */
const round1 = (x: number) => (Math.abs(x) < 1 ? Number(x.toPrecision(3)) : Math.round(x * 10) / 10);

/**
 * GFLOP/s of one large product on this backend, the best of 10: [512, 576] · [576, 1536], the shape of
 * an MLP projection of the bench's batch. What a step achieves reads against it.
 */
/**
 * GPU dispatches of one decoder layer, forward and backward: a loss-and-gradient pass through the first
 * layer twice, less one through it once (the same layer object serves twice; layers hold no state).
 */
async function dispatchesPerLayer(
  model: LlamaModel,
  batch: Batch,
  recompute: boolean,
  dropout: boolean,
): Promise<number> {
  const first = model.layers[0];
  const dispatches = async (layers: LlamaModel['layers']) => {
    const view: LlamaModel = { ...model, layers };
    const { counts } = await countGpuWork(async () => {
      // Variables the view does not reach (the other layers' LoRA) get no gradient and are left out.
      // With dropout as the run has it: each adapted projection then draws a mask and multiplies alone.
      const rng = dropout ? createRng(0) : undefined;
      const { value, grads } = tf.variableGrads(() => batchLossSum(view, batch, { recompute, rng }));
      await value.data();
      tf.dispose([value, ...Object.values(grads)]);
    });
    return counts.dispatches;
  };
  const once = await dispatches([first]);
  return (await dispatches([first, first])) - once;
}

/** The kernels of one call, each with its time (tf.profile waits for every kernel to finish). */
async function profileStep(run: () => Promise<unknown>): Promise<Kernel[]> {
  const info = await tf.profile(async () => {
    await run();
  });
  return info.kernels;
}
