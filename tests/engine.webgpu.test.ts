// Same checks on WebGPU: Dawn over SwiftShader in Node (see vitest.webgpu.config.ts).
import { engineChecks } from './helpers/engine-checks';
import { describe, expect, it } from 'vitest';
import { readModelFolder } from '../src/node/model-folder';
import { pickBestBackend, probeWebGpu, tensorByteLimit } from '../src/engine/backend';
import { loadModel } from '../src/engine/load';
import { disposeModel } from '../src/engine/model';
import { scoreTokens } from '../src/engine/score';
import { maxAbsDiff, modelDir, reference, switchBackend, WASM_PATHS } from './helpers/shared';
import { disposeAfterEach } from './helpers/cleanup';

const own = disposeAfterEach();

engineChecks('webgpu', 24, 1);

describe('backend choice', () => {
  it('sees SwiftShader as a software fallback adapter and picks wasm instead', async () => {
    const adapter = await probeWebGpu();
    expect(adapter?.isFallbackAdapter).toBe(true);
    expect(adapter!.maxBufferSize).toBeGreaterThan(0);
    const choice = await pickBestBackend({ wasmPaths: WASM_PATHS });
    expect(choice.backend).toBe('wasm');
    expect(choice.reason).toMatch(/software fallback/);
  });
});

describe('vocabulary split on WebGPU', () => {
  it("stories260K in pieces under the adapter's reported limit scores like the PyTorch reference", async () => {
    await switchBackend('webgpu');
    const adapter = (await probeWebGpu())!;
    expect(tensorByteLimit({ backend: 'webgpu', reason: '', adapter })).toBe(
      Math.min(adapter.maxBufferSize, adapter.maxStorageBufferBindingSize),
    );
    // SwiftShader's real limit is far above this fixture, so simulate a small one: pieces of 200 tokens.
    const loaded = own(loadModel(readModelFolder(modelDir('stories260K')), { maxTensorBytes: 200 * 64 * 4 }));
    expect(loaded.model.lm_head).toHaveLength(3);
    const ref = reference<{ ids: number[]; logprobs: number[] }>('stories260K', 'score-lily.json');
    expect(maxAbsDiff((await scoreTokens(loaded.model, ref.ids)).logprobs, ref.logprobs)).toBeLessThan(1e-3);
    disposeModel(loaded.model);
  });
});
