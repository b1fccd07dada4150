// Gemma 3's config.json as transformers' Gemma3TextConfig reads it, and what derives from its description:
// tensor names, parameter counts, GGUF names. Values worked out by hand from the published configs.
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { checkpointShapes, parameterCount, parseModelConfig } from '../src/engine/config';
import { ggufTensorName } from '../src/formats/gguf-model';
import { catalogConfig } from '../src/hub/catalog';
import { modelConfig, modelDir } from './helpers/shared';

const gemma = (extra: Record<string, unknown> = {}) => ({
  model_type: 'gemma3_text',
  hidden_size: 64,
  intermediate_size: 128,
  num_hidden_layers: 12,
  num_attention_heads: 4,
  num_key_value_heads: 1,
  vocab_size: 100,
  ...extra,
});

/** Every tensor's name and shape in a safetensors file's header. */
function safetensorsShapes(file: string): Map<string, number[]> {
  const bytes = fs.readFileSync(file);
  const length = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + length).toString('utf8')) as Record<
    string,
    { shape: number[] }
  >;
  return new Map(
    Object.entries(header)
      .filter(([name]) => name !== '__metadata__')
      .map(([name, entry]) => [name, entry.shape]),
  );
}

describe('Gemma 3 config', () => {
  it("fills Gemma3TextConfig's defaults: head_dim 256, tied, RoPE 1e6 and 1e4, window 4096, every sixth layer full", () => {
    const args = parseModelConfig(gemma());
    expect(args).toMatchObject({
      family: 'gemma3',
      headDim: 256,
      tieWordEmbeddings: true,
      qkNorm: true,
      qkvBias: false,
      normPlacement: 'sandwich',
      normKind: 'one-plus-weight',
      activation: 'gelu_tanh',
      ropeTheta: 1e6,
      rmsNormEps: 1e-6,
    });
    // query_pre_attn_scalar defaults to 256; √64 = 8 exactly.
    expect(args.attentionScale).toBe(1 / 16);
    expect(args.embedScale).toBe(8);
    const full = { window: null, ropeTheta: 1e6 };
    const sliding = { window: 4096, ropeTheta: 1e4 };
    expect(args.layerAttention).toEqual([
      ...[sliding, sliding, sliding, sliding, sliding, full],
      ...[sliding, sliding, sliding, sliding, sliding, full],
    ]);
  });

  it('reads layer_types, sliding_window, rope_local_base_freq and query_pre_attn_scalar as given', () => {
    const args = parseModelConfig(
      gemma({
        num_hidden_layers: 3,
        layer_types: ['full_attention', 'sliding_attention', 'full_attention'],
        sliding_window: 7,
        rope_local_base_freq: 500,
        rope_theta: 20000,
        query_pre_attn_scalar: 144,
        hidden_size: 640,
      }),
    );
    expect(args.layerAttention).toEqual([
      { window: null, ropeTheta: 20000 },
      { window: 7, ropeTheta: 500 },
      { window: null, ropeTheta: 20000 },
    ]);
    expect(args.attentionScale).toBe(1 / 12);
    // √640 = 25.2982212813…, held as the nearest float32 (transformers' embed_scale tensor).
    expect(args.embedScale).toBe(Math.fround(25.298221281347036));
    expect(args.embedScale).not.toBe(Math.sqrt(640));
  });

  it('refuses what webtune does not compute, saying what and what to do', () => {
    expect(() => parseModelConfig(gemma({ final_logit_softcapping: 30 }))).toThrow(
      /final_logit_softcapping to 30; webtune does not implement it for gemma3_text\. Choose a model without it\./,
    );
    expect(() => parseModelConfig(gemma({ hidden_activation: 'gelu' }))).toThrow(
      /Activation "gelu" is not supported; gemma3_text models use gelu_pytorch_tanh/,
    );
    expect(() => parseModelConfig(gemma({ use_bidirectional_attention: true }))).toThrow(
      /use_bidirectional_attention/,
    );
    expect(() =>
      parseModelConfig(gemma({ num_hidden_layers: 2, layer_types: ['sliding_attention'] })),
    ).toThrow(/layer_types must list "sliding_attention" or "full_attention" for each of the 2 layers/);
    expect(() => parseModelConfig({ ...gemma(), model_type: 'gemma3' })).toThrow(
      /multimodal \("gemma3"\); webtune reads the text-only ones \("gemma3_text": 270M, 1B\)/,
    );
  });

  it('names exactly the tensors the fixture checkpoint holds, with their shapes', () => {
    const args = parseModelConfig(modelConfig('tiny-random-gemma3'));
    const onDisk = safetensorsShapes(path.join(modelDir('tiny-random-gemma3'), 'model.safetensors'));
    expect(new Map(checkpointShapes(args))).toEqual(onDisk);
    const fromFile = [...onDisk.values()].reduce((n, shape) => n + shape.reduce((a, b) => a * b, 1), 0);
    expect(parameterCount(args)).toBe(fromFile);
  });

  it('counts Gemma 3 270M as published: 170M in the embedding, 100M in the blocks', () => {
    const args = parseModelConfig(catalogConfig('google/gemma-3-270m-it'));
    const embedding = 262144 * 640;
    // Per layer, by hand: q 640·1024, k and v 640·256, o 1024·640, GeGLU 3·640·2048, 4 norms of 640 and
    // q/k norms of 256.
    const layer = 640 * 1024 * 2 + 640 * 256 * 2 + 3 * 640 * 2048 + 4 * 640 + 2 * 256;
    expect(parameterCount(args)).toBe(embedding + 18 * layer + 640);
    expect(embedding / 1e6).toBeCloseTo(168, 0);
    expect((18 * layer) / 1e6).toBeCloseTo(100, 0);
  });

  it("maps every tensor to llama.cpp's gemma3 names", () => {
    const args = parseModelConfig(modelConfig('tiny-random-gemma3'));
    const names = checkpointShapes(args).map(([name]) => ggufTensorName(args, name));
    expect(names.filter((n) => n?.startsWith('blk.0.'))).toEqual([
      'blk.0.attn_norm.weight',
      'blk.0.post_attention_norm.weight',
      'blk.0.ffn_norm.weight',
      'blk.0.post_ffw_norm.weight',
      'blk.0.attn_q.weight',
      'blk.0.attn_k.weight',
      'blk.0.attn_v.weight',
      'blk.0.attn_output.weight',
      'blk.0.ffn_gate.weight',
      'blk.0.ffn_up.weight',
      'blk.0.ffn_down.weight',
      'blk.0.attn_q_norm.weight',
      'blk.0.attn_k_norm.weight',
    ]);
  });
});
