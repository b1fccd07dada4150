/**
 * The Llama-family decoder (Llama, Mistral, Qwen2, Qwen3). Module names mirror the checkpoint's, so
 * loading is a name lookup and PEFT names fall out for free. The model knows nothing about LoRA:
 * `applyLora` swaps chosen projections for wrapped ones.
 */
import type { ModelArgs } from './config';
import { KVCache } from './kv-cache';
import { applyRope, attentionBias, frozenMatMul, positionsFromMask, rmsNorm, ropeTables, type ForwardContext, type Projection } from './layers';
import { tf } from './tf';

export interface Attention {
  q_proj: Projection;
  k_proj: Projection;
  v_proj: Projection;
  o_proj: Projection;
  /** Qwen3 only: per-head RMSNorm weights [headDim]. */
  q_norm?: tf.Tensor1D;
  k_norm?: tf.Tensor1D;
}

export interface Mlp {
  gate_proj: Projection;
  up_proj: Projection;
  down_proj: Projection;
}

export interface DecoderLayer {
  input_layernorm: tf.Tensor1D;
  self_attn: Attention;
  post_attention_layernorm: tf.Tensor1D;
  mlp: Mlp;
}

export interface LlamaModel {
  args: ModelArgs;
  /**
   * [vocab, hidden], in pieces of consecutive vocabulary rows when one tensor would exceed the device's
   * buffer limit (see vocabStarts); absent when tied to the lm_head, whose columns then serve as embeddings.
   */
  embed_tokens?: tf.Tensor2D[];
  layers: DecoderLayer[];
  norm: tf.Tensor1D;
  /** lm_head.weight transposed: [hidden, vocab], in pieces of consecutive vocabulary columns (usually one). */
  lm_head_t: tf.Tensor2D[];
  /** The first vocabulary id of each piece: [0] when unsplit. */
  vocabStarts: number[];
  /** The device's per-tensor limit the model was built for (undefined: none). Logits are computed in row chunks under it. */
  maxTensorBytes?: number;
  /** Every base-weight tensor, once, for disposal. */
  owned: tf.Tensor[];
}

export interface ForwardOptions extends ForwardContext {
  /** Per batch row, 1 for a real token and 0 for padding, over cached + new positions. */
  attentionMask?: Float32Array[];
  cache?: KVCache;
}

function attention(
  attn: Attention,
  args: ModelArgs,
  x: tf.Tensor2D,
  shape: { batch: number; steps: number },
  rope: { cos: tf.Tensor4D; sin: tf.Tensor4D },
  bias: tf.Tensor4D,
  ctx: ForwardContext,
  cached?: { cache: KVCache; layer: number },
): tf.Tensor2D {
  const { batch, steps } = shape;
  const { numHeads: heads, numKvHeads: kvHeads, headDim } = args;
  const groups = heads / kvHeads;
  // [B·T, H·hd] → [B, T, H, hd]
  let q = tf.reshape(attn.q_proj.apply(x, ctx), [batch, steps, heads, headDim]) as tf.Tensor4D;
  let k = tf.reshape(attn.k_proj.apply(x, ctx), [batch, steps, kvHeads, headDim]) as tf.Tensor4D;
  const v = tf.reshape(attn.v_proj.apply(x, ctx), [batch, steps, kvHeads, headDim]) as tf.Tensor4D;
  if (attn.q_norm && attn.k_norm) {
    q = rmsNorm(q, attn.q_norm, args.rmsNormEps);
    k = rmsNorm(k, attn.k_norm, args.rmsNormEps);
  }
  // → [B, heads, T, hd], rotated by position
  q = applyRope(tf.transpose(q, [0, 2, 1, 3]), rope.cos, rope.sin);
  k = applyRope(tf.transpose(k, [0, 2, 1, 3]), rope.cos, rope.sin);
  let vt = tf.transpose(v, [0, 2, 1, 3]) as tf.Tensor4D;
  if (cached) [k, vt] = cached.cache.updateAndFetch(cached.layer, k, vt);
  const keys = k.shape[2];
  // Grouped-query attention without copying K/V: the `groups` query heads that share one KV head are
  // stacked along the time axis, so one batched matmul per KV head does the work.
  const qGrouped = tf.reshape(q, [batch, kvHeads, groups * steps, headDim]);
  const scores = tf.reshape(tf.matMul(qGrouped, k, false, true), [batch, heads, steps, keys]);
  const probs = tf.softmax(tf.add(tf.mul(scores, 1 / Math.sqrt(headDim)), bias));
  const grouped = tf.matMul(tf.reshape(probs, [batch, kvHeads, groups * steps, keys]), vt);
  const out = tf.transpose(tf.reshape(grouped, [batch, heads, steps, headDim]), [0, 2, 1, 3]);
  return attn.o_proj.apply(tf.reshape(out, [batch * steps, heads * headDim]) as tf.Tensor2D, ctx);
}

function mlp(m: Mlp, x: tf.Tensor2D, ctx: ForwardContext): tf.Tensor2D {
  // SwiGLU: down(silu(gate(x)) · up(x))
  const gate = m.gate_proj.apply(x, ctx);
  return m.down_proj.apply(tf.mul(tf.mul(gate, tf.sigmoid(gate)), m.up_proj.apply(x, ctx)), ctx);
}

/**
 * Final hidden states [B·T, hidden] for token ids [B, T], after the last norm. With a cache, only the
 * new tokens are passed and earlier keys/values come from the cache (which this call extends).
 */
export function hiddenStates(model: LlamaModel, ids: Int32Array, batch: number, options: ForwardOptions = {}): tf.Tensor2D {
  const { args } = model;
  const steps = ids.length / batch;
  const cache = options.cache;
  const past = cache?.length ?? 0;
  const newMask = options.attentionMask ?? Array.from({ length: batch }, () => new Float32Array(past + steps).fill(1));
  if (cache) cache.keyMask = newMask;
  return tf.tidy(() => {
    const rope = ropeTables(positionsFromMask(newMask, steps), args.headDim, args.ropeTheta);
    const bias = attentionBias(newMask, steps);
    let x = embed(model, tf.tensor1d(ids, 'int32'));
    model.layers.forEach((layer, i) => {
      const h = rmsNorm(x, layer.input_layernorm, args.rmsNormEps);
      const cached = cache ? { cache, layer: i } : undefined;
      x = tf.add(x, attention(layer.self_attn, args, h, { batch, steps }, rope, bias, options, cached));
      x = tf.add(x, mlp(layer.mlp, rmsNorm(x, layer.post_attention_layernorm, args.rmsNormEps), options));
    });
    return rmsNorm(x, model.norm, args.rmsNormEps);
  });
}

/** Embedding rows [N, hidden] for token ids [N]. */
function embed(model: LlamaModel, ids: tf.Tensor1D): tf.Tensor2D {
  const pieces = model.embed_tokens ?? model.lm_head_t;
  // Rows [N, hidden] from one piece ([vocab_i, hidden] untied, or [hidden, vocab_i] tied).
  const rows = (piece: tf.Tensor2D, local: tf.Tensor1D) =>
    model.embed_tokens ? (tf.gather(piece, local) as tf.Tensor2D) : (tf.transpose(tf.gather(piece, local, 1)) as tf.Tensor2D);
  if (pieces.length === 1) return rows(pieces[0], ids);
  // Split vocabulary: each piece gathers the ids it holds (others clamped, then zeroed) and the pieces add up.
  const parts = pieces.map((piece, i) => {
    const start = model.vocabStarts[i];
    const size = model.embed_tokens ? piece.shape[0] : piece.shape[1];
    // (tfjs-wasm's ClipByValue leaves int32 values unclipped, so clamp with minimum/maximum.)
    const local = tf.maximum(tf.minimum(tf.sub(ids, tf.scalar(start, 'int32')), tf.scalar(size - 1, 'int32')), tf.scalar(0, 'int32')) as tf.Tensor1D;
    const inside = tf.logicalAnd(tf.greaterEqual(ids, tf.scalar(start, 'int32')), tf.less(ids, tf.scalar(start + size, 'int32')));
    return tf.mul(rows(piece, local), tf.expandDims(tf.cast(inside, 'float32'), 1)) as tf.Tensor2D;
  });
  return parts.reduce((sum, part) => tf.add(sum, part));
}

/** How many rows of logits [rows, vocab] fit in one tensor under the model's limit (Infinity when unlimited). */
export function logitRowsPerChunk(model: LlamaModel): number {
  if (model.maxTensorBytes === undefined) return Infinity;
  return Math.max(1, Math.floor(model.maxTensorBytes / (model.args.vocabSize * 4)));
}

/** Logits [N, vocab] from hidden states [N, hidden]; a split lm_head is multiplied piece by piece. */
export function lmHead(model: LlamaModel, hidden: tf.Tensor2D): tf.Tensor2D {
  if (model.lm_head_t.length === 1) return frozenMatMul(hidden, model.lm_head_t[0]);
  return tf.concat(model.lm_head_t.map((piece) => frozenMatMul(hidden, piece)), 1);
}

export function disposeModel(model: LlamaModel): void {
  for (const t of model.owned) t.dispose();
  model.owned.length = 0;
}
