/**
 * Paths to the fixtures (see paths.ts) and small loaders the engine tests share.
 */
import fs from 'node:fs';
import path from 'node:path';
import { readModelFolder } from '../../src/node/model-folder';
import { useBackend, type BackendName } from '../../src/engine/backend';
import { loadModel, type LoadedModel } from '../../src/engine/load';
import type { BuildOptions } from '../../src/engine/weights';

import { dataFile, modelDir, REFERENCE_SCRIPT, referenceFile } from './paths';

export { dataFile, modelDir, REFERENCE_SCRIPT };

export function reference<T = Record<string, unknown>>(model: string, file: string): T {
  return JSON.parse(fs.readFileSync(referenceFile(model, file), 'utf8')) as T;
}

/** A fixture model; its weights in the default layout for the backend unless `options` say otherwise. */
export function loadFixture(name: string, options: BuildOptions = {}): LoadedModel {
  return loadModel(readModelFolder(modelDir(name)), options);
}

export const WASM_PATHS =
  path.resolve(__dirname, '..', '..', 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist') + '/';

export async function switchBackend(name: BackendName): Promise<void> {
  await useBackend(name, { wasmPaths: WASM_PATHS, webgpuKeepSmallOpsOnGpu: true });
}

/** ‖a − b‖ / ‖b‖ over flat arrays. */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < b.length; i++) {
    diff += (a[i] - b[i]) ** 2;
    norm += b[i] ** 2;
  }
  return Math.sqrt(diff) / Math.sqrt(norm);
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < b.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

export function modelConfig(name: string): unknown {
  return JSON.parse(fs.readFileSync(path.join(modelDir(name), 'config.json'), 'utf8'));
}
