/** Backend set-up specific to Node: where the wasm binaries live, and Dawn for WebGPU. */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pickBestBackend, useBackend, type BackendChoice, type BackendName } from '../engine/backend';
import { CliError } from './errors';

const require = createRequire(import.meta.url);
const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

function wasmPaths(): string {
  return path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')) + '/dist/';
}

/** Gives Node a navigator.gpu through Dawn, if the `webgpu` package and a Vulkan driver are present. */
async function installDawn(): Promise<boolean> {
  const g = globalThis as { navigator?: { gpu?: unknown } };
  if (g.navigator?.gpu) return true;
  if (!process.env.VK_ICD_FILENAMES && fs.existsSync(SWIFTSHADER_ICD))
    process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
  process.env.NODEVICE_SELECT ??= '1';
  try {
    const dawn = (await import('webgpu')) as { create: (flags: string[]) => unknown; globals: object };
    Object.assign(globalThis, dawn.globals);
    if (!g.navigator)
      Object.defineProperty(globalThis, 'navigator', { value: {}, configurable: true, writable: true });
    Object.defineProperty(g.navigator, 'gpu', { value: dawn.create([]), configurable: true });
    return true;
  } catch {
    return false;
  }
}

export async function chooseBackend(requested: string | undefined): Promise<BackendChoice> {
  const options = { wasmPaths: wasmPaths() };
  if (!requested || requested === 'auto') {
    await installDawn();
    return pickBestBackend(options);
  }
  if (!['cpu', 'wasm', 'webgpu'].includes(requested)) {
    throw new CliError(`Unknown backend "${requested}". Use cpu, wasm, webgpu or auto.`);
  }
  if (requested === 'webgpu' && !(await installDawn())) {
    throw new CliError(
      'WebGPU is not available in this Node: install the `webgpu` package (and chromium + libvulkan1 for SwiftShader), or use --backend wasm.',
    );
  }
  try {
    return await useBackend(requested as BackendName, options);
  } catch (error) {
    throw new CliError((error as Error).message);
  }
}
