/**
 * A base in 8 and 4 bits on WebGPU (Dawn over SwiftShader): the packed words stay on the GPU and WGSL kernels
 * dequantize them inside the products, yet the model scores and takes LoRA gradients like the PyTorch
 * reference on the same weights, dequantized by reference/quant_model.py; and no float32 copy of a matrix is
 * ever uploaded.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../src/engine/load';
import { attachLora, detachLora } from '../src/engine/lora';
import { disposeModel } from '../src/engine/model';
import { PackedFrozenMatrix } from '../src/engine/frozen';
import { scoreTokens } from '../src/engine/score';
import { tf } from '../src/engine/tf';
import { batchLossSum } from '../src/engine/train';
import { countGpuWork } from '../src/engine/webgpu/counters';
import type { LoraTarget } from '../src/formats/peft';
import { readModelFolder } from '../src/node/model-folder';
import { detLora } from './helpers/det-lora';
import { referenceScore } from './helpers/reference';
import {
  maxAbsDiff,
  modelDir,
  reference,
  REFERENCE_SCRIPT,
  relativeError,
  switchBackend,
} from './helpers/shared';

const temporary: string[] = [];
afterAll(() => {
  for (const dir of temporary) fs.rmSync(dir, { recursive: true, force: true });
});

function dequantizedFolder(source: string, format: 'q8_0' | 'nf4'): string {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), `webtune-gpu-${format}-`));
  temporary.push(out);
  execFileSync('/usr/bin/python3', [
    path.join(path.dirname(REFERENCE_SCRIPT), 'quant_model.py'),
    source,
    out,
    format,
  ]);
  return out;
}

interface GradRef {
  ids: number[];
  rank: number;
  alpha: number;
  targets: LoraTarget[];
  loss: number;
  grads: Record<string, number[][]>;
}

describe('a packed base on WebGPU', () => {
  beforeAll(() => switchBackend('webgpu'));

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

      const like = reference<GradRef>('stories260K', 'lora-grad-qv-r4.json');
      const out = path.join(dir, 'grads.json');
      execFileSync('/usr/bin/python3', [
        REFERENCE_SCRIPT,
        'lora-grad',
        dir,
        '--ids',
        like.ids.join(','),
        '--rank',
        String(like.rank),
        '--alpha',
        String(like.alpha),
        '--targets',
        like.targets.join(','),
        '--out',
        out,
      ]);
      const ref = JSON.parse(fs.readFileSync(out, 'utf8')) as GradRef;
      const adapter = attachLora(
        model,
        { rank: ref.rank, alpha: ref.alpha, dropout: 0, targets: ref.targets, useRslora: false },
        detLora,
      );
      const batchIds = Int32Array.from(ref.ids);
      const batch = {
        ids: batchIds,
        targetMask: new Float32Array(batchIds.length).fill(1),
        attentionMask: new Float32Array(batchIds.length).fill(1),
        batchSize: 1,
        seqLength: batchIds.length,
      };
      const { value, grads } = tf.variableGrads(
        () => tf.div(batchLossSum(model, batch, { recompute: true }), batchIds.length - 1) as tf.Scalar,
        adapter.variables(),
      );
      expect(Math.abs((await value.data())[0] - ref.loss)).toBeLessThan(1e-4 * Math.max(1, ref.loss));
      for (const [module, lora] of adapter.modules)
        for (const which of ['A', 'B'] as const)
          expect(
            relativeError(
              await grads[(which === 'A' ? lora.A : lora.B).name].data(),
              ref.grads[`base_model.model.${module}.lora_${which}.weight`].flat(),
            ),
            `${module} lora_${which}`,
          ).toBeLessThan(1e-3);
      tf.dispose([value, ...Object.values(grads)]);
      detachLora(model, adapter);
      adapter.dispose();
      disposeModel(model);
      expect(tf.memory().numTensors).toBe(before);
    });
});
