/**
 * What the production build ships: the engine's own wasm, and not the ONNX runtime transformers.js would
 * bring.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, inject, it } from 'vitest';

describe('the built site', () => {
  it('ships tfjs-backend-wasm and no ONNX runtime, in a few MB', () => {
    const outDir = inject('e2eBuild');
    if (outDir === null) return expect(process.env.WEBTUNE_E2E_SERVER).toBe('dev'); // the dev server has no build
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
