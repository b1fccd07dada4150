// Same checks on WebGPU: Dawn over SwiftShader in Node (see vitest.webgpu.config.ts).
import { engineChecks } from './helpers/engine-checks';
import { describe, expect, it } from 'vitest';
import { pickBestBackend, probeWebGpu } from '../src/engine/backend';
import { WASM_PATHS } from './helpers/shared';

engineChecks('webgpu', 24);

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
