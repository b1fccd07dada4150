/**
 * What the wasm heap really holds, beyond the tensors tfjs counts: XNNPACK keeps a packed copy of every
 * matrix multiplied from the right. Compact weights (multiplied from the left) must not be copied.
 * Each test file runs in its own process, so this heap starts fresh; it only ever grows.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { parseModelConfig } from '../src/engine/config';
import type { Linear } from '../src/engine/layers';
import { compactWeightsByDefault } from '../src/engine/memory';
import { disposeModel, hiddenStates } from '../src/engine/model';
import { tf } from '../src/engine/tf';
import { buildModel } from '../src/engine/weights';
import { switchBackend } from './helpers/shared';

const heapBytes = () => (tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.length;

describe('the wasm heap', () => {
  beforeAll(() => switchBackend('wasm'));

  it('holds compact decoder weights once; weights on the right are packed a second time', async () => {
    // Wide layers and a tiny vocabulary: ~100 MB of decoder weights, next to nothing else.
    const args = parseModelConfig({
      model_type: 'llama',
      hidden_size: 512,
      intermediate_size: 2048,
      num_hidden_layers: 6,
      num_attention_heads: 8,
      num_key_value_heads: 8,
      vocab_size: 64,
    });
    const layerBytes = args.numLayers * (4 * 512 * 512 + 3 * 512 * 2048) * 4;
    const growthOfForward = (compactWeights: boolean) => {
      const model = buildModel(
        args,
        (_name, shape) => ({ shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.01) }),
        { compactWeights },
      );
      const before = heapBytes();
      tf.tidy(() => hiddenStates(model, new Int32Array(16).fill(3), 1));
      const growth = heapBytes() - before;
      disposeModel(model);
      return growth;
    };
    // Compact first: the heap never shrinks, so the packed copies of the second model come on top.
    const compact = growthOfForward(true);
    const packed = growthOfForward(false);
    expect(compact).toBeLessThan(0.3 * layerBytes);
    expect(packed).toBeGreaterThan(0.8 * layerBytes);
  });

  it('models whose doubled weights would crowd the heap are compact by default; SmolLM2-135M is not', () => {
    const smol135 = parseModelConfig({
      model_type: 'llama',
      hidden_size: 576,
      intermediate_size: 1536,
      num_hidden_layers: 30,
      num_attention_heads: 9,
      num_key_value_heads: 3,
      vocab_size: 49152,
      tie_word_embeddings: true,
    });
    const qwen05 = parseModelConfig({
      model_type: 'qwen2',
      hidden_size: 896,
      intermediate_size: 4864,
      num_hidden_layers: 24,
      num_attention_heads: 14,
      num_key_value_heads: 2,
      vocab_size: 151936,
      tie_word_embeddings: true,
    });
    expect(compactWeightsByDefault(smol135)).toBe(false);
    expect(compactWeightsByDefault(qwen05)).toBe(true);
    const big = buildModel({ ...qwen05, numLayers: 1 }, (_name, shape) => ({
      shape,
      data: new Float32Array(shape.reduce((a, b) => a * b, 1)),
    }));
    // Built on wasm without a choice: the layout follows the full model's size, given by its args.
    // Compact weights are W [out, in] itself, not its transpose.
    expect((big.layers[0].self_attn.q_proj as Linear).matrix).toMatchObject({
      transposed: !compactWeightsByDefault({ ...qwen05, numLayers: 1 }),
    });
    disposeModel(big);
  });
});
