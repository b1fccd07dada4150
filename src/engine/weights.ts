/**
 * Builds a LlamaModel from named checkpoint tensors. Names are looked up exactly as Hugging Face
 * writes them; a missing or misshapen tensor fails with the name and both shapes.
 */
import type { ModelArgs } from './config';
import { Linear } from './layers';
import type { DecoderLayer, LlamaModel } from './model';
import { tf } from './tf';

export interface HostTensor {
  shape: number[];
  data: Float32Array;
}

/** Looks a tensor up by checkpoint name (the shape config.json implies is given for generated weights). */
export type TensorSource = (name: string, expectedShape: number[]) => HostTensor | undefined;

export class ModelWeightsError extends Error {
  override name = 'ModelWeightsError';
}

export function buildModel(args: ModelArgs, source: TensorSource): LlamaModel {
  const owned: tf.Tensor[] = [];
  const take = (name: string, shape: number[], optional = false): tf.Tensor | undefined => {
    const host = source(name, shape);
    if (!host) {
      if (optional) return undefined;
      throw new ModelWeightsError(`model.safetensors has no tensor "${name}". The weights do not match config.json (${args.modelType}, ${args.numLayers} layers); use the files of one model together.`);
    }
    if (host.shape.length !== shape.length || host.shape.some((d, i) => d !== shape[i])) {
      throw new ModelWeightsError(`Tensor "${name}" has shape [${host.shape}] but config.json implies [${shape}]. The weights and config.json come from different models.`);
    }
    const tensor = tf.tensor(host.data, shape, 'float32');
    owned.push(tensor);
    return tensor;
  };
  const need = (name: string, shape: number[]) => take(name, shape)!;
  const linear = (prefix: string, out: number, inp: number, bias: boolean) =>
    new Linear(need(`${prefix}.weight`, [out, inp]) as tf.Tensor2D, bias ? (need(`${prefix}.bias`, [out]) as tf.Tensor1D) : undefined);

  const { hiddenSize: d, intermediateSize: ff, headDim: hd } = args;
  const qOut = args.numHeads * hd;
  const kvOut = args.numKvHeads * hd;
  try {
    const embed = need('model.embed_tokens.weight', [args.vocabSize, d]) as tf.Tensor2D;
    const layers: DecoderLayer[] = [];
    for (let i = 0; i < args.numLayers; i++) {
      const p = `model.layers.${i}`;
      layers.push({
        input_layernorm: need(`${p}.input_layernorm.weight`, [d]) as tf.Tensor1D,
        self_attn: {
          q_proj: linear(`${p}.self_attn.q_proj`, qOut, d, args.qkvBias),
          k_proj: linear(`${p}.self_attn.k_proj`, kvOut, d, args.qkvBias),
          v_proj: linear(`${p}.self_attn.v_proj`, kvOut, d, args.qkvBias),
          o_proj: linear(`${p}.self_attn.o_proj`, d, qOut, args.oBias),
          ...(args.qkNorm
            ? {
                q_norm: need(`${p}.self_attn.q_norm.weight`, [hd]) as tf.Tensor1D,
                k_norm: need(`${p}.self_attn.k_norm.weight`, [hd]) as tf.Tensor1D,
              }
            : {}),
        },
        post_attention_layernorm: need(`${p}.post_attention_layernorm.weight`, [d]) as tf.Tensor1D,
        mlp: {
          gate_proj: linear(`${p}.mlp.gate_proj`, ff, d, false),
          up_proj: linear(`${p}.mlp.up_proj`, ff, d, false),
          down_proj: linear(`${p}.mlp.down_proj`, d, ff, false),
        },
      });
    }
    const norm = need('model.norm.weight', [d]) as tf.Tensor1D;
    // Some tied checkpoints still store lm_head.weight; reuse the embedding either way to save memory.
    const lmHead = args.tieWordEmbeddings ? embed : (need('lm_head.weight', [args.vocabSize, d]) as tf.Tensor2D);
    return { args, embed_tokens: embed, layers, norm, lm_head: lmHead, owned };
  } catch (error) {
    for (const t of owned) t.dispose();
    throw error;
  }
}
