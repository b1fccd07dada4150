/**
 * A base in 8 and 4 bits on WebGPU (Dawn over SwiftShader): the packed words stay on the GPU and WGSL kernels
 * dequantize them inside the products, yet the model scores and takes LoRA gradients like the PyTorch
 * reference on the same weights, dequantized by reference/quant_model.py; and no float32 copy of a matrix is
 * ever uploaded.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../src/engine/load';
import { disposeModel } from '../src/engine/model';
import { PackedFrozenMatrix } from '../src/engine/frozen';
import { scoreTokens } from '../src/engine/score';
import { tf } from '../src/engine/tf';
import { countGpuWork } from '../src/engine/webgpu/counters';
import { readModelFolder } from '../src/node/model-folder';
import { referenceScore } from './helpers/reference';
import { maxAbsDiff, modelDir, reference, switchBackend } from './helpers/shared';
import {
  dequantizedFolder,
  expectGradsLike,
  referenceGrads,
  removeDequantizedFolders,
  type GradRef,
} from './helpers/quantized';

describe('a packed base on WebGPU', () => {
  beforeAll(() => switchBackend('webgpu'));
  afterAll(removeDequantizedFolders);

  for (const format of ['q8_0', 'nf4'] as const)
    it(`stories260K in ${format}: scores and LoRA gradients like the reference, the weights packed on the GPU`, async () => {
      const { ids } = reference<{ ids: number[] }>('stories260K', 'score-lily.json');
      const dir = dequantizedFolder(modelDir('stories260K'), format);
      const before = tf.memory().numTensors;
      const loaded = loadModel(readModelFolder(modelDir('stories260K')), { weights: format });
      const { model } = loaded;
      const packed = model.owned.filter((o): o is PackedFrozenMatrix => o instanceof PackedFrozenMatrix);
      expect(packed.length).toBeGreaterThan(0);
      const bytes = packed.reduce((n, m) => n + m.bytes, 0);
      const weights = packed.reduce((n, m) => n + m.rows * m.cols, 0);
      // The first pass uploads the packed words, and nothing the size of a widened matrix.
      let engine: number[] = [];
      const { counts } = await countGpuWork(async () => {
        engine = (await scoreTokens(model, ids)).logprobs;
      });
      console.log(
        `${format}: ${(bytes / weights).toFixed(4)} bytes a weight packed; first pass ${counts.dispatches} dispatches, ${counts.uploads} uploads, ${(counts.uploadedBytes / 1024).toFixed(0)} KiB uploaded`,
      );
      expect(counts.uploadedBytes).toBeLessThan(bytes + 64 * 1024 + ids.length * 64 * 4 * 8);
      expect(maxAbsDiff(engine, referenceScore(dir, ids).logprobs)).toBeLessThan(1e-4);

      await expectGradsLike(
        model,
        referenceGrads(dir, reference<GradRef>('stories260K', 'lora-grad-qv-r4.json')),
      );
      disposeModel(model);
      expect(tf.memory().numTensors).toBe(before);
    });
});
