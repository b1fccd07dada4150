/**
 * What the production build ships: the engine's own wasm, and not the ONNX runtime transformers.js would
 * bring.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { readEnvironment } from '../../src/node/environment';

describe('the built site', () => {
  it('ships tfjs-backend-wasm and no ONNX runtime, in a few MB', () => {
    const outDir = inject('e2eBuild');
    // The dev server has no build.
    if (outDir === null) return expect(readEnvironment().e2eDevServer).toBe(true);
    const files = fs.readdirSync(path.join(outDir, 'assets'));
    expect(files.filter((f) => f.endsWith('.wasm')).sort()).toEqual([
      expect.stringMatching(/^tfjs-backend-wasm-[\w-]+\.wasm$/),
      expect.stringMatching(/^tfjs-backend-wasm-simd-[\w-]+\.wasm$/),
      expect.stringMatching(/^tfjs-backend-wasm-threaded-simd-[\w-]+\.wasm$/),
    ]);
    expect(files.some((f) => /ort-wasm|onnxruntime/i.test(f))).toBe(false);
    const bytes = files.reduce((sum, f) => sum + fs.statSync(path.join(outDir, 'assets', f)).size, 0);
    expect(bytes).toBeLessThan(8 * 2 ** 20);
  });
});
