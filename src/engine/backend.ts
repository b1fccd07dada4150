/**
 * Choosing the compute backend. One code path runs on cpu, wasm and webgpu; this module only decides
 * which one and reports why. A software WebGPU adapter (SwiftShader, "fallback") is 40–70× slower
 * than wasm, so it is never picked automatically.
 */
import { tf } from './tf';

export type BackendName = 'cpu' | 'wasm' | 'webgpu';
export const BACKENDS: readonly BackendName[] = ['webgpu', 'wasm', 'cpu'];

export interface GpuAdapterSummary {
  vendor: string;
  architecture: string;
  description: string;
  isFallbackAdapter: boolean;
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
}

export interface BackendChoice {
  backend: BackendName;
  /** Plain words for the user: why this backend. */
  reason: string;
  adapter?: GpuAdapterSummary;
}

export interface BackendOptions {
  /** Where tfjs-backend-wasm finds its .wasm files: a URL prefix or folder ending in '/', or one URL per file. */
  wasmPaths?: string | Partial<Record<'tfjs-backend-wasm.wasm' | 'tfjs-backend-wasm-simd.wasm' | 'tfjs-backend-wasm-threaded-simd.wasm', string>>;
  /** Keep every webgpu op on the GPU (tfjs otherwise runs tensors under 1000 elements on the CPU). */
  webgpuKeepSmallOpsOnGpu?: boolean;
}

/** Looks at the WebGPU adapter without creating a device. */
export async function probeWebGpu(): Promise<GpuAdapterSummary | null> {
  const gpu = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  if (!gpu) return null;
  let adapter: GPUAdapter | null = null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch {
    return null;
  }
  if (!adapter) return null;
  const info = (adapter as GPUAdapter & { info?: GPUAdapterInfo }).info;
  const legacyFallback = (adapter as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter;
  const infoFallback = (info as unknown as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter;
  const architecture = info?.architecture ?? '';
  return {
    vendor: info?.vendor ?? '',
    architecture,
    description: info?.description ?? '',
    // Older browsers expose the flag on the adapter, newer ones on adapter.info. SwiftShader is software either way.
    isFallbackAdapter: Boolean(infoFallback ?? legacyFallback) || /swiftshader/i.test(architecture),
    maxBufferSize: adapter.limits.maxBufferSize,
    maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
  };
}

async function register(name: BackendName, options: BackendOptions): Promise<void> {
  if (name === 'wasm') {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    if (options.wasmPaths) wasm.setWasmPaths(options.wasmPaths);
  } else if (name === 'webgpu') {
    // Imported late: the module registers itself only if navigator.gpu exists at import time.
    await import('@tensorflow/tfjs-backend-webgpu');
    if (options.webgpuKeepSmallOpsOnGpu) tf.env().set('WEBGPU_CPU_FORWARD', false);
  }
}

/** Switches tfjs to the named backend or throws a message saying why it is unavailable. */
export async function useBackend(name: BackendName, options: BackendOptions = {}): Promise<BackendChoice> {
  const adapter = name === 'webgpu' ? await probeWebGpu() : null;
  if (name === 'webgpu' && !adapter) {
    throw new Error('WebGPU is not available here (no GPU adapter). Choose the wasm or cpu backend.');
  }
  await register(name, options);
  if (tf.getBackend() !== name) {
    const ok = await tf.setBackend(name);
    if (!ok) throw new Error(`The ${name} backend failed to start. Choose another backend (wasm or cpu).`);
  }
  await tf.ready();
  const reason =
    name === 'webgpu'
      ? adapter!.isFallbackAdapter
        ? `WebGPU on a software adapter (${adapter!.architecture || adapter!.vendor}): correct but much slower than wasm`
        : `WebGPU on ${adapter!.vendor} ${adapter!.architecture}`.trim()
      : name === 'wasm'
        ? 'WebAssembly on the CPU'
        : 'plain JavaScript on the CPU (slowest)';
  return { backend: name, reason, ...(adapter ? { adapter } : {}) };
}

/** Picks the fastest backend that works: a hardware WebGPU adapter, else wasm, else cpu. */
export async function pickBestBackend(options: BackendOptions = {}): Promise<BackendChoice> {
  const adapter = await probeWebGpu();
  const tried: string[] = [];
  if (adapter && !adapter.isFallbackAdapter) {
    try {
      return await useBackend('webgpu', options);
    } catch (error) {
      tried.push(`webgpu: ${(error as Error).message}`);
    }
  }
  try {
    const choice = await useBackend('wasm', options);
    const why = adapter?.isFallbackAdapter
      ? 'WebAssembly on the CPU, chosen because the only WebGPU adapter is a software fallback'
      : adapter
        ? choice.reason
        : 'WebAssembly on the CPU (no WebGPU here)';
    return { ...choice, reason: tried.length ? `${why}; ${tried.join('; ')}` : why, ...(adapter ? { adapter } : {}) };
  } catch (error) {
    tried.push(`wasm: ${(error as Error).message}`);
  }
  const choice = await useBackend('cpu', options);
  return { ...choice, reason: `${choice.reason}; ${tried.join('; ')}` };
}

/**
 * The largest tensor the chosen backend takes in one buffer: for WebGPU the adapter's limits (tfjs asks
 * its device for the adapter's maxBufferSize and maxStorageBufferBindingSize); no limit on wasm and cpu.
 */
export function tensorByteLimit(choice: BackendChoice): number | undefined {
  if (choice.backend !== 'webgpu' || !choice.adapter) return undefined;
  return Math.min(choice.adapter.maxBufferSize, choice.adapter.maxStorageBufferBindingSize);
}
