/**
 * The decoder of every family webtune reads (Llama, Mistral, Qwen2, Qwen3, Gemma 3), as the family's
 * recipe in ModelArgs (architecture.ts) configures it. Module names mirror the checkpoint's, so
 * loading is a name lookup and PEFT names fall out for free. The model knows nothing about LoRA:
 * `applyLora` swaps chosen projections for wrapped ones.
 */
import type { LayerAttention } from './architecture';
import type { ModelArgs } from './config';
import { frozenProduct, type FrozenMatrix } from './frozen';
import { KVCache } from './kv-cache';
import { LOGITS_CHUNK_BYTES } from './memory';
import type { LayerContext } from './layers';
import {
  applyRope,
  applyShared,
  attend,
  attentionBias,
  geGlu,
  gradientOnlyLinear,
  Linear,
  positionsFromMask,
  rmsNorm,
  ropeTables,
  swiGlu,
  type ForwardContext,
  type Projection,
} from './layers';
import { recomputed } from './recompute';
import { recordingGradients, tf } from './tf';

export interface Attention {
  q_proj: Projection;
  k_proj: Projection;
  v_proj: Projection;
  o_proj: Projection;
  /** Qwen3, Gemma 3: per-head RMSNorm weights [headDim]. */
  q_norm?: tf.Tensor1D;
  k_norm?: tf.Tensor1D;
}

export interface Mlp {
  gate_proj: Projection;
  up_proj: Projection;
  down_proj: Projection;
}

/** Norm weights are held as the product takes them: Gemma's 1 + w is added once, at load. */
export interface DecoderLayer {
  input_layernorm: tf.Tensor1D;
  self_attn: Attention;
  /** Llama: the norm before the MLP. Gemma: the norm of the attention's output. */
  post_attention_layernorm: tf.Tensor1D;
  /** Gemma's sandwich only: the norms before and after the MLP. */
  pre_feedforward_layernorm?: tf.Tensor1D;
  post_feedforward_layernorm?: tf.Tensor1D;
  mlp: Mlp;
}

export interface LlamaModel {
  args: ModelArgs;
  /**
   * [vocab, hidden], in pieces of consecutive vocabulary rows when one tensor would exceed the device's
   * buffer limit (see vocabStarts); absent when tied to the lm_head, whose rows then serve as embeddings.
   */
  embed_tokens?: FrozenMatrix[];
  layers: DecoderLayer[];
  norm: tf.Tensor1D;
  /** lm_head.weight [vocab, hidden], in pieces of consecutive vocabulary rows (usually one). */
  lm_head: FrozenMatrix[];
  /** The first vocabulary id of each piece: [0] when unsplit. */
  vocabStarts: number[];
  /**
   * The device's per-tensor limit the model was built for (undefined: none). Logits are computed in row
   * chunks under it.
   */
  maxTensorBytes?: number;
  /** Overrides LOGITS_CHUNK_BYTES (tests force many chunks on a small vocabulary). */
  logitsChunkBytes?: number;
  /** Every base-weight tensor and frozen matrix, once, for disposal. */
  owned: { dispose(): void }[];
}

export type { LayerContext };

export interface ForwardOptions extends ForwardContext {
  /** Per batch row, 1 for a real token and 0 for padding, over cached + new positions. */
  attentionMask?: Float32Array[];
  cache?: KVCache;
  /** Recompute each decoder layer in its backward pass (only while recording gradients, with no cache). */
  recompute?: boolean;
}

function attention(attn: Attention, args: ModelArgs, x: tf.Tensor2D, c: LayerContext): tf.Tensor2D {
  const { batch, steps } = c;
  const { numHeads: heads, numKvHeads: kvHeads, headDim } = args;
  const groups = heads / kvHeads;
  // [B·T, H·hd] → [B, T, H, hd]
  const [qx, kx, vx] = applyShared([attn.q_proj, attn.k_proj, attn.v_proj], x, c);
  let q = tf.reshape(qx, [batch, steps, heads, headDim]) as tf.Tensor4D;
  let k = tf.reshape(kx, [batch, steps, kvHeads, headDim]) as tf.Tensor4D;
  const v = tf.reshape(vx, [batch, steps, kvHeads, headDim]) as tf.Tensor4D;
  if (attn.q_norm && attn.k_norm) {
    q = rmsNorm(q, attn.q_norm, args.rmsNormEps);
    k = rmsNorm(k, attn.k_norm, args.rmsNormEps);
  }
  // → [B, heads, T, hd], rotated by position
  q = applyRope(tf.transpose(q, [0, 2, 1, 3]), c.cos, c.sin);
  k = applyRope(tf.transpose(k, [0, 2, 1, 3]), c.cos, c.sin);
  let vt = tf.transpose(v, [0, 2, 1, 3]) as tf.Tensor4D;
  if (c.cached) [k, vt] = c.cached.cache.updateAndFetch(c.cached.layer, k, vt);
  // Grouped-query attention without copying K/V: the `groups` query heads that share one KV head are
  // stacked along the time axis, so one batched matmul per KV head does the work.
  const grouped = attend(
    tf.reshape(q, [batch, kvHeads, groups * steps, headDim]),
    k,
    vt,
    c.bias,
    heads,
    args.attentionScale,
  );
  const out = tf.transpose(tf.reshape(grouped, [batch, heads, steps, headDim]), [0, 2, 1, 3]);
  return attn.o_proj.apply(tf.reshape(out, [batch * steps, heads * headDim]) as tf.Tensor2D, c);
}

function mlp(m: Mlp, args: ModelArgs, x: tf.Tensor2D, c: LayerContext): tf.Tensor2D {
  // SwiGLU: down(silu(gate(x)) · up(x)); GeGLU the same with GELU.
  const [gate, up] = applyShared([m.gate_proj, m.up_proj], x, c);
  const z = args.activation === 'gelu_tanh' ? geGlu(gate, up) : swiGlu(gate, up);
  // Recomputing for a gradient, a frozen down_proj's product is skipped: its gradient needs only dy.
  return c.gradientOnly && m.down_proj instanceof Linear
    ? gradientOnlyLinear(m.down_proj, z)
    : m.down_proj.apply(z, c);
}

/**
 * One decoder block. Pre-norm: h = x + attn(norm(x)); out = h + mlp(norm(h)). Gemma's sandwich also
 * normalizes each branch's output before it joins the residual.
 */
function decoderLayer(layer: DecoderLayer, args: ModelArgs, x: tf.Tensor2D, c: LayerContext): tf.Tensor2D {
  const norm = (input: tf.Tensor2D, weight: tf.Tensor1D) => rmsNorm(input, weight, args.rmsNormEps);
  const attended = attention(layer.self_attn, args, norm(x, layer.input_layernorm), c);
  if (args.normPlacement === 'pre') {
    const h = tf.add(x, attended) as tf.Tensor2D;
    return tf.add(h, mlp(layer.mlp, args, norm(h, layer.post_attention_layernorm), c)) as tf.Tensor2D;
  }
  const h = tf.add(x, norm(attended, layer.post_attention_layernorm)) as tf.Tensor2D;
  const fed = mlp(layer.mlp, args, norm(h, layer.pre_feedforward_layernorm!), c);
  return tf.add(h, norm(fed, layer.post_feedforward_layernorm!)) as tf.Tensor2D;
}

/** The tensors a layer trains (LoRA's A and B), for a recomputed layer to return their gradients. */
function trainableTensors(layer: DecoderLayer): tf.Variable[] {
  const parts: (Projection | tf.Tensor | undefined)[] = [
    ...Object.values(layer.self_attn),
    ...Object.values(layer.mlp),
  ];
  return parts.flatMap((p) => (p === undefined || p instanceof tf.Tensor ? [] : (p.trainable?.() ?? [])));
}

/**
 * Final hidden states [B·T, hidden] for token ids [B, T], after the last norm. With a cache, only the
 * new tokens are passed and earlier keys/values come from the cache (which this call extends). With
 * `recompute` and gradients being recorded, each layer keeps only its input for the backward pass.
 */
export function hiddenStates(
  model: LlamaModel,
  ids: Int32Array,
  batch: number,
  options: ForwardOptions = {},
): tf.Tensor2D {
  const { args } = model;
  const steps = ids.length / batch;
  const cache = options.cache;
  const past = cache?.length ?? 0;
  const newMask =
    options.attentionMask ?? Array.from({ length: batch }, () => new Float32Array(past + steps).fill(1));
  if (cache) cache.keyMask = newMask;
  const recompute = options.recompute === true && !cache && recordingGradients();
  return tf.tidy(() => {
    const positions = positionsFromMask(newMask, steps);
    // One set of RoPE tables and one mask per kind of attention (window, RoPE base), shared by its layers.
    const kinds = new Map<string, LayerContext>();
    const contextOf = (kind: LayerAttention): LayerContext => {
      const key = `${kind.window}:${kind.ropeTheta}`;
      const remakeTables = () => ({
        ...ropeTables(positions, args.headDim, kind.ropeTheta),
        bias: attentionBias(newMask, steps, kind.window),
      });
      if (!kinds.has(key))
        kinds.set(key, { dropoutSeed: options.dropoutSeed, batch, steps, ...remakeTables(), remakeTables });
      return kinds.get(key)!;
    };
    let x = embed(model, tf.tensor1d(ids, 'int32'));
    model.layers.forEach((layer, i) => {
      const shared = contextOf(args.layerAttention[i]);
      const c = cache ? { ...shared, cached: { cache, layer: i } } : shared;
      x = recompute
        ? recomputed((input, again) => decoderLayer(layer, args, input, again), x, c, trainableTensors(layer))
        : decoderLayer(layer, args, x, c);
    });
    return rmsNorm(x, model.norm, args.rmsNormEps);
  });
}

/**
 * Embedding rows [N, hidden] for token ids [N]. The embedding is frozen and nothing trainable comes
 * before it, so the lookup runs as one opaque step: recorded op by op, the gather would keep a copy of
 * the whole vocabulary matrix for a gradient nobody asks for.
 */
function embed(model: LlamaModel, ids: tf.Tensor1D): tf.Tensor2D {
  const scale = model.args.embedScale;
  const frozen = tf.customGrad(((input: tf.Tensor1D, save: tf.GradSaveFunc) => {
    save([]);
    const rows = () => (scale === 1 ? embedRows(model, input) : tf.mul(embedRows(model, input), scale));
    return { value: tf.tidy(rows), gradFunc: () => tf.zerosLike(input) };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return frozen(ids) as tf.Tensor2D;
}

function embedRows(model: LlamaModel, ids: tf.Tensor1D): tf.Tensor2D {
  const pieces = model.embed_tokens ?? model.lm_head;
  if (pieces.length === 1) return pieces[0].gatherRows(ids);
  // Split vocabulary: each piece gathers the ids it holds (others clamped, then zeroed) and the pieces add
  // up.
  const parts = pieces.map((piece, i) => {
    const start = model.vocabStarts[i];
    const size = piece.rows;
    // (tfjs-wasm's ClipByValue leaves int32 values unclipped, so clamp with minimum/maximum.)
    const local = tf.maximum(
      tf.minimum(tf.sub(ids, tf.scalar(start, 'int32')), tf.scalar(size - 1, 'int32')),
      tf.scalar(0, 'int32'),
    ) as tf.Tensor1D;
    const inside = tf.logicalAnd(
      tf.greaterEqual(ids, tf.scalar(start, 'int32')),
      tf.less(ids, tf.scalar(start + size, 'int32')),
    );
    return tf.mul(piece.gatherRows(local), tf.expandDims(tf.cast(inside, 'float32'), 1)) as tf.Tensor2D;
  });
  return parts.reduce((sum, part) => tf.add(sum, part));
}

/**
 * How many rows of logits [rows, vocab] one chunk holds: within the budget and the device's per-tensor limit.
 */
export function logitRowsPerChunk(model: LlamaModel): number {
  const budget = Math.min(model.logitsChunkBytes ?? LOGITS_CHUNK_BYTES, model.maxTensorBytes ?? Infinity);
  return Math.max(1, Math.floor(budget / (model.args.vocabSize * 4)));
}

/** Logits [N, vocab] from hidden states [N, hidden]; a split lm_head is multiplied piece by piece. */
export function lmHead(model: LlamaModel, hidden: tf.Tensor2D): tf.Tensor2D {
  if (model.lm_head.length === 1) return frozenProduct(model.lm_head[0], hidden);
  return tf.concat(
    model.lm_head.map((piece) => frozenProduct(piece, hidden)),
    1,
  );
}

/**
 * The lm_head's backward pass by hand: d(hidden) [N, hidden] = d(logits) · W for d(logits) [N, vocab], piece
 * by piece (each vocabulary matrix computes it without copying itself; see F32Matrix).
 */
export function lmHeadBackward(model: LlamaModel, dLogits: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const pieces = model.lm_head;
    if (pieces.length === 1) return pieces[0].inputGradient(dLogits);
    const parts = tf.split(
      dLogits,
      pieces.map((w) => w.rows),
      1,
    );
    return pieces
      .map((w, i) => w.inputGradient(parts[i] as tf.Tensor2D))
      .reduce((sum, part) => tf.add(sum, part));
  });
}

export function disposeModel(model: LlamaModel): void {
  for (const t of model.owned) t.dispose();
  model.owned.length = 0;
}
