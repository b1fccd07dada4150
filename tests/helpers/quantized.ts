/**
 * What the tests of a packed base share: a model folder dequantized by the reference's definitions
 * (reference/quant_model.py), and the reference's LoRA gradients compared with the engine's.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'vitest';
import { attachLora, detachLora } from '../../src/engine/lora';
import type { LlamaModel } from '../../src/engine/model';
import { tf } from '../../src/engine/tf';
import { batchLossSum } from '../../src/engine/train';
import type { LoraTarget } from '../../src/formats/peft';
import { detLora } from './det-lora';
import { REFERENCE_SCRIPT, relativeError } from './shared';

const PYTHON = '/usr/bin/python3';

/** Folders made here, for the caller's afterAll to remove. */
export const dequantizedFolders: string[] = [];

/** `source` with its weights as `format` holds them, dequantized by reference/quant_model.py. */
export function dequantizedFolder(source: string, format: 'bf16' | 'q8_0' | 'nf4'): string {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), `webtune-${format}-`));
  dequantizedFolders.push(out);
  execFileSync(PYTHON, [path.join(path.dirname(REFERENCE_SCRIPT), 'quant_model.py'), source, out, format], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return out;
}

export function removeDequantizedFolders(): void {
  for (const dir of dequantizedFolders.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
}

export interface GradRef {
  ids: number[];
  rank: number;
  alpha: number;
  targets: LoraTarget[];
  loss: number;
  grads: Record<string, number[][]>;
}

/** The reference's loss and LoRA gradients (deterministic init) on the folder `dir`, for `like`'s run. */
export function referenceGrads(dir: string, like: GradRef): GradRef {
  const out = path.join(dir, 'grads.json');
  execFileSync(
    PYTHON,
    [
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
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  return JSON.parse(fs.readFileSync(out, 'utf8')) as GradRef;
}

/** The engine's loss and LoRA gradients on `model` (layers recomputed) equal `ref`'s. */
export async function expectGradsLike(model: LlamaModel, ref: GradRef): Promise<void> {
  const adapter = attachLora(
    model,
    { rank: ref.rank, alpha: ref.alpha, dropout: 0, targets: ref.targets, useRslora: false },
    detLora,
  );
  const ids = Int32Array.from(ref.ids);
  const batch = {
    ids,
    targetMask: new Float32Array(ids.length).fill(1),
    attentionMask: new Float32Array(ids.length).fill(1),
    batchSize: 1,
    seqLength: ids.length,
  };
  try {
    const { value, grads } = tf.variableGrads(
      () => tf.div(batchLossSum(model, batch, { recompute: true }), ids.length - 1) as tf.Scalar,
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
  } finally {
    detachLora(model, adapter);
    adapter.dispose();
  }
}
