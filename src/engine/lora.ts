/**
 * LoRA (Hu et al. 2021) as PEFT defines it: y = W·x + scale · B·(A·dropout(x)), with A [r, in] and
 * B [out, r], scale = alpha / r (or alpha / √r with rsLoRA). The base weights stay frozen and shared;
 * switching the adapter off gives the base model back without reloading anything.
 */
import { PROJECTION_PARENTS } from './architecture';
import type { AdapterWeights, LoraTarget } from './adapter-weights';
import { modulePath } from './adapter-weights';
import type { ForwardContext, LowRankTerm, Projection } from './layers';
import type { LlamaModel } from './model';
import { createRng } from './random';
import { tf } from './tf';

export interface LoraSettings {
  rank: number;
  alpha: number;
  dropout: number;
  targets: LoraTarget[];
  useRslora: boolean;
}

/** Initial A and B for one module, as host arrays (A: r·in values, B: out·r values). */
export type LoraInit = (
  layer: number,
  target: LoraTarget,
  targetIndex: number,
  shape: { in: number; out: number; rank: number },
) => { A: Float32Array; B: Float32Array };

/** PEFT's default: A ~ kaiming_uniform(a=√5) = U(±1/√in), B = 0, so training starts from the base model. */
export function peftInit(seed: number): LoraInit {
  const rng = createRng(seed);
  return (_layer, _target, _index, { in: inFeatures, out, rank }) => {
    const bound = 1 / Math.sqrt(inFeatures);
    const A = new Float32Array(rank * inFeatures);
    for (let i = 0; i < A.length; i++) A[i] = (2 * rng.next() - 1) * bound;
    return { A, B: new Float32Array(out * rank) };
  };
}

class LoraLinear implements Projection {
  readonly inFeatures: number;
  readonly outFeatures: number;
  constructor(
    readonly base: Projection,
    readonly A: tf.Variable<tf.Rank.R2>,
    readonly B: tf.Variable<tf.Rank.R2>,
    private readonly adapter: LoraAdapter,
  ) {
    this.inFeatures = base.inFeatures;
    this.outFeatures = base.outFeatures;
  }

  apply(x: tf.Tensor2D, ctx: ForwardContext): tf.Tensor2D {
    return this.adapt(this.base.apply(x, ctx), x, ctx);
  }

  adapt(y: tf.Tensor2D, x: tf.Tensor2D, ctx: ForwardContext): tf.Tensor2D {
    if (!this.adapter.enabled) return y;
    const { dropout } = this.adapter.settings;
    const input = ctx.dropoutSeed && dropout > 0 ? tf.dropout(x, dropout, undefined, ctx.dropoutSeed()) : x;
    // Transposing A [r, in] and B [out, r] is a small copy; a transposed operand is tfjs-wasm's slow loop.
    const delta = tf.matMul(tf.matMul(input, tf.transpose(this.A)), tf.transpose(this.B));
    return tf.add(y, tf.mul(delta, this.adapter.scale));
  }

  lowRank(ctx: ForwardContext): LowRankTerm | null {
    if (!this.adapter.enabled) return null;
    // Dropout draws a mask per module on its own copy of x; such terms cannot share one product.
    if (ctx.dropoutSeed && this.adapter.settings.dropout > 0) return null;
    return { A: this.A, B: this.B, scale: this.adapter.scale };
  }

  trainable(): tf.Variable[] {
    return this.adapter.enabled ? [this.A, this.B] : [];
  }
}

type ProjectionOwner = Record<string, Projection | tf.Tensor | undefined>;

function ownerOf(model: LlamaModel, layer: number, target: LoraTarget): ProjectionOwner {
  const l = model.layers[layer];
  return l[PROJECTION_PARENTS[target]] as unknown as ProjectionOwner;
}

let adapterCount = 0;

export class LoraAdapter {
  /** When false every wrapped projection behaves exactly like its base linear. */
  enabled = true;
  readonly modules = new Map<string, LoraLinear>();
  private readonly id = ++adapterCount;

  constructor(
    readonly settings: LoraSettings,
    readonly baseModelName: string,
  ) {}

  get scale(): number {
    const { alpha, rank, useRslora } = this.settings;
    return useRslora ? alpha / Math.sqrt(rank) : alpha / rank;
  }

  /** Trainable tensors in a fixed order (module order, A then B): the optimizer's parameter list. */
  variables(): tf.Variable[] {
    return [...this.modules.values()].flatMap((m) => [m.A, m.B]);
  }

  /** Copies the weights to host memory in PEFT's layout (async: WebGPU cannot read synchronously). */
  async toWeights(): Promise<AdapterWeights> {
    const { rank, alpha, dropout, targets, useRslora } = this.settings;
    const modules: AdapterWeights['modules'] = new Map();
    for (const [path, m] of this.modules) {
      modules.set(path, {
        A: { shape: [...m.A.shape] as [number, number], data: (await m.A.data()) as Float32Array },
        B: { shape: [...m.B.shape] as [number, number], data: (await m.B.data()) as Float32Array },
      });
    }
    return {
      config: {
        r: rank,
        lora_alpha: alpha,
        lora_dropout: dropout,
        target_modules: [...targets],
        use_rslora: useRslora,
        base_model_name_or_path: this.baseModelName,
      },
      modules,
    };
  }

  /** Overwrites A and B with host values (resuming a run). Sizes must match. */
  load(weights: Map<string, { A: Float32Array; B: Float32Array }>): void {
    for (const [path, m] of this.modules) {
      const w = weights.get(path);
      if (!w) throw new Error(`The saved state has no weights for ${path}; it belongs to another adapter.`);
      tf.tidy(() => {
        m.A.assign(tf.tensor2d(w.A, m.A.shape));
        m.B.assign(tf.tensor2d(w.B, m.B.shape));
      });
    }
  }

  dispose(): void {
    for (const m of this.modules.values()) {
      m.A.dispose();
      m.B.dispose();
    }
    this.modules.clear();
  }

  /** @internal */
  variableName(path: string, which: 'A' | 'B'): string {
    return `lora${this.id}/${path}/${which}`;
  }
}

function trainable(values: Float32Array, shape: [number, number], name: string): tf.Variable<tf.Rank.R2> {
  const initial = tf.tensor2d(values, shape);
  const variable = tf.variable(initial, true, name) as tf.Variable<tf.Rank.R2>;
  initial.dispose(); // the variable holds its own copy
  return variable;
}

/** Wraps the chosen projections of every layer with LoRA and returns the adapter that owns A and B. */
export function attachLora(
  model: LlamaModel,
  settings: LoraSettings,
  init: LoraInit,
  baseModelName = '',
): LoraAdapter {
  if (
    model.layers.some((l) => Object.values({ ...l.self_attn, ...l.mlp }).some((p) => p instanceof LoraLinear))
  ) {
    throw new Error('This model already has a LoRA adapter attached; detach it first.');
  }
  const adapter = new LoraAdapter(settings, baseModelName);
  model.layers.forEach((_, layer) => {
    settings.targets.forEach((target, targetIndex) => {
      const owner = ownerOf(model, layer, target);
      const base = owner[target] as Projection;
      const { A, B } = init(layer, target, targetIndex, {
        in: base.inFeatures,
        out: base.outFeatures,
        rank: settings.rank,
      });
      const path = modulePath(layer, target);
      const wrapped = new LoraLinear(
        base,
        trainable(A, [settings.rank, base.inFeatures], adapter.variableName(path, 'A')),
        trainable(B, [base.outFeatures, settings.rank], adapter.variableName(path, 'B')),
        adapter,
      );
      owner[target] = wrapped;
      adapter.modules.set(path, wrapped);
    });
  });
  return adapter;
}

/** Puts the base linears back and frees the adapter's tensors. */
export function detachLora(model: LlamaModel, adapter: LoraAdapter): void {
  model.layers.forEach((_, layer) => {
    for (const target of adapter.settings.targets) {
      const owner = ownerOf(model, layer, target);
      const wrapped = owner[target];
      if (wrapped instanceof LoraLinear) owner[target] = wrapped.base;
    }
  });
  adapter.dispose();
}

/** Attaches an imported PEFT adapter (shapes already checked against the model). */
export function attachAdapterWeights(model: LlamaModel, weights: AdapterWeights): LoraAdapter {
  const c = weights.config;
  const settings: LoraSettings = {
    rank: c.r,
    alpha: c.lora_alpha,
    dropout: c.lora_dropout,
    targets: c.target_modules,
    useRslora: c.use_rslora,
  };
  return attachLora(
    model,
    settings,
    (layer, target) => {
      const m = weights.modules.get(modulePath(layer, target));
      if (!m)
        throw new Error(
          `The adapter has no weights for ${modulePath(layer, target)}; it was trained for a different model.`,
        );
      return { A: m.A.data, B: m.B.data };
    },
    c.base_model_name_or_path,
  );
}
