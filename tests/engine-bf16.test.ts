/**
 * BF16 checkpoints (how SmolLM2, Qwen2.5 and Qwen3 ship): stories260K rounded to bfloat16 in the test
 * loads, and scores exactly as the PyTorch reference scores the same bf16 weights; its distance from the
 * f32 reference is the rounding's own, nothing more.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../src/engine/load';
import { disposeModel } from '../src/engine/model';
import { readSafetensors } from '../src/engine/safetensors';
import { scoreTokens } from '../src/engine/score';
import { readModelFolder } from '../src/node/model-folder';
import { bf16Safetensors } from './helpers/bf16';
import { referenceScore } from './helpers/reference';
import { maxAbsDiff, modelDir, reference, switchBackend } from './helpers/shared';
import { disposeAfterEach } from './helpers/cleanup';

const own = disposeAfterEach();

describe('bfloat16 weights', () => {
  beforeAll(() => switchBackend('wasm'));

  it('stories260K in BF16 scores like PyTorch on the same weights, within bf16 rounding of the f32 reference', async () => {
    const source = modelDir('stories260K');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-bf16-'));
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json'])
      fs.copyFileSync(path.join(source, f), path.join(dir, f));
    const { tensors } = readSafetensors(
      new Uint8Array(fs.readFileSync(path.join(source, 'model.safetensors'))),
    );
    fs.writeFileSync(path.join(dir, 'model.safetensors'), bf16Safetensors([...tensors]));
    const written = readSafetensors(new Uint8Array(fs.readFileSync(path.join(dir, 'model.safetensors'))));
    expect(new Set([...written.tensors.values()].map((t) => t.dtype))).toEqual(new Set(['BF16']));

    const f32 = reference<{ ids: number[]; logprobs: number[] }>('stories260K', 'score-lily.json');
    const loaded = own(loadModel(readModelFolder(dir)));
    const engine = (await scoreTokens(loaded.model, f32.ids)).logprobs;
    disposeModel(loaded.model);
    const torchBf16 = referenceScore(dir, f32.ids).logprobs;
    fs.rmSync(dir, { recursive: true, force: true });

    // Same bf16 weights, f32 arithmetic here and f64 in PyTorch: the engine tolerance of the f32 tests.
    expect(maxAbsDiff(engine, torchBf16)).toBeLessThan(1e-4);
    // Rounding moved the log-probs (the test would pass vacuously otherwise), and only by what rounding moves
    // them.
    const rounding = maxAbsDiff(torchBf16, f32.logprobs);
    expect(rounding).toBeGreaterThan(1e-4);
    expect(maxAbsDiff(engine, f32.logprobs)).toBeLessThanOrEqual(rounding + 1e-4);
  });
});
