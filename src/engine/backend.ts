/**
 * Choosing the compute backend. One code path runs on cpu, wasm and webgpu; this module only decides
 * which one and reports why. A software WebGPU adapter (SwiftShader, "fallback") is 40–70× slower
 * than wasm, so it is never picked automatically.
 */
import { tf } from './tf';
import { registerWasmSlices } from './wasm-slice';

export type BackendName = 'cpu' | 'wasm' | 'webgpu';
const BACKENDS: readonly BackendName[] = ['webgpu', 'wasm', 'cpu'];

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
  /** Plain words for the user: why this backend, and what failed on the way to it. */
  reason: string;
  adapter?: GpuAdapterSummary;
  /** wasm only: how many threads tfjs computes on. */
  threads?: number;
  /**
   * wasm only: whether the multi-threaded build runs (on a machine with one logical core, still one thread).
   */
  threaded?: boolean;
  /**
   * A first guess at the training speed this device reaches on this backend (GFLOP/s): a calibration
   * product's speed at the estimate's first efficiency, for the catalog's time per step before any estimate.
   */
  stepGflops?: number;
}

/**
 * The ways to start a backend, tried in this order: a hardware GPU, wasm with threads, wasm on one thread,
 * plain JS.
 */
export type StartStep = 'webgpu' | 'wasm-threads' | 'wasm' | 'cpu';

/** Switches tfjs to one backend, or throws saying why not. */
export type Starter = (options: BackendOptions) => Promise<void>;

export interface BackendOptions {
  /**
   * Where tfjs-backend-wasm finds its .wasm files: a URL prefix or folder ending in '/', or one URL per file.
   */
  wasmPaths?:
    | string
    | Partial<
        Record<
          'tfjs-backend-wasm.wasm' | 'tfjs-backend-wasm-simd.wasm' | 'tfjs-backend-wasm-threaded-simd.wasm',
          string
        >
      >;
  /**
   * How many threads wasm computes on when it starts with threads (default: the logical cores, at most 8, the
   * helper threads tfjs starts up front). tfjs alone would take half the cores, counting hyper-threads as
   * spares.
   */
  wasmThreads?: number;
  /**
   * Keep every webgpu op on the GPU (default). tfjs would otherwise compute ops whose inputs are small (under
   * 1000 elements) and still in CPU memory on the CPU, in JavaScript, and upload their results later.
   */
  webgpuKeepSmallOpsOnGpu?: boolean;
  /**
   * How long one way of starting may take before it counts as failed and the next is tried (default 20 s).
   */
  startTimeoutMs?: number;
  /** Tests only: replaces how a step starts, e.g. with one that hangs or throws. */
  starters?: Partial<Record<StartStep, Starter>>;
}

export const DEFAULT_START_TIMEOUT_MS = 20_000;

/** Looks at the WebGPU adapter without creating a device. */
export async function probeWebGpu(): Promise<GpuAdapterSummary | null> {
  const gpu = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  if (!gpu) return null;
  let adapter: GPUAdapter | null;
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
    // Older browsers expose the flag on the adapter, newer ones on adapter.info. SwiftShader is software
    // either way.
    isFallbackAdapter: Boolean(infoFallback ?? legacyFallback) || /swiftshader/i.test(architecture),
    maxBufferSize: adapter.limits.maxBufferSize,
    maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
  };
}

type WasmModule = typeof import('@tensorflow/tfjs-backend-wasm');
let wasmModule: WasmModule | null = null;

async function loadWasm(options: BackendOptions): Promise<WasmModule> {
  if (!wasmModule) {
    wasmModule = await import('@tensorflow/tfjs-backend-wasm');
    registerWasmSlices();
  }
  if (options.wasmPaths) wasmModule.setWasmPaths(options.wasmPaths);
  return wasmModule;
}

interface EngineInternals {
  registry: Record<string, unknown>;
  pendingBackendInit: Promise<boolean> | null;
  pendingBackendInitId: number;
}
const engineInternals = () => tf.engine() as unknown as EngineInternals;

/**
 * The backend tfjs computes on now, if it actually started (after a failed start tfjs names it but has none).
 */
function runningBackend(): string | null {
  const name = tf.getBackend();
  return name && engineInternals().registry[name] ? name : null;
}

/** tfjs.setBackend, as an error when it fails. */
async function setTfBackend(name: BackendName): Promise<void> {
  if (runningBackend() === name) return;
  if (!(await tf.setBackend(name))) throw new Error(`tfjs could not initialise it`);
  await tf.ready();
}

const STARTERS: Record<StartStep, Starter> = {
  async webgpu(options) {
    // Imported late: the module registers itself only if navigator.gpu exists at import time.
    await import('@tensorflow/tfjs-backend-webgpu');
    tf.env().set('WEBGPU_CPU_FORWARD', !(options.webgpuKeepSmallOpsOnGpu ?? true));
    await setTfBackend('webgpu');
  },
  async 'wasm-threads'(options) {
    const wasm = await loadWasm(options);
    const threads = options.wasmThreads ?? defaultWasmThreads();
    // Both are read while the backend is created. tfjs caps the count at half of hardwareConcurrency (taking
    // every other logical core for a hyper-thread), so for that moment the module is told of twice the
    // threads.
    wasm.setThreadsCount(threads);
    await withReportedCores(threads * 2, () => setTfBackend('wasm'));
  },
  async wasm(options) {
    await loadWasm(options);
    // Read when the wasm module is created: one thread, whatever the page could do.
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
    await setTfBackend('wasm');
  },
  async cpu() {
    await setTfBackend('cpu');
  },
};

let startInProgress: { step: StartStep; fail: (error: Error) => void } | null = null;

/**
 * Fails the backend start in progress (only if it is `step`, when given), for errors no promise reports: an
 * uncaught error in one of wasm's helper threads leaves the start waiting forever. Returns whether it failed
 * one.
 */
export function failBackendStart(message: string, step?: StartStep): boolean {
  if (!startInProgress || (step && startInProgress.step !== step)) return false;
  startInProgress.fail(new Error(message));
  return true;
}

/** Whether tfjs computes on wasm with helper threads now. */
export function wasmThreadsInUse(): boolean {
  return runningBackend() === 'wasm' && (wasmModule?.getThreadsCount() ?? 1) > 1;
}

/**
 * A start that failed or hung leaves tfjs waiting on its initialisation promise, and tfjs then refuses every
 * op ("has not yet been initialized") even on a backend that starts later without a promise (cpu). Make that
 * promise stale, so the next start begins clean and a late answer from the abandoned one is ignored.
 */
function abandonStart(): void {
  const engine = engineInternals();
  if (engine.pendingBackendInit) {
    engine.pendingBackendInitId++;
    engine.pendingBackendInit = null;
  }
}

const seconds = (ms: number) => (ms >= 1000 ? `${Math.round(ms / 100) / 10} s` : `${ms} ms`);

/** Runs one way of starting, failing it when it throws, reports an uncaught failure, or takes too long. */
async function attempt(step: StartStep, options: BackendOptions): Promise<void> {
  const start = options.starters?.[step] ?? STARTERS[step];
  const limit = options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const failed = new Promise<never>((_, reject) => {
    startInProgress = { step, fail: reject };
    timer = setTimeout(() => reject(new Error(`it did not start within ${seconds(limit)}`)), limit);
  });
  try {
    await Promise.race([start(options), failed]);
  } catch (error) {
    abandonStart();
    throw error;
  } finally {
    clearTimeout(timer);
    startInProgress = null;
  }
}

/**
 * Runs `start` while navigator.hardwareConcurrency reads `cores` (where there is a navigator), then undoes
 * that.
 */
async function withReportedCores<T>(cores: number, start: () => Promise<T>): Promise<T> {
  const navigator = (globalThis as { navigator?: object }).navigator;
  if (!navigator) return start();
  Object.defineProperty(navigator, 'hardwareConcurrency', { value: cores, configurable: true });
  try {
    return await start();
  } finally {
    // The own property shadowed the browser's getter; without it the real count shows again.
    delete (navigator as { hardwareConcurrency?: number }).hardwareConcurrency;
  }
}

/**
 * tfjs-backend-wasm starts 8 helper threads with the module; a thread more would have to start mid-op and
 * never would.
 */
const WASM_MAX_THREADS = 8;

/** Every logical core, up to the helper threads tfjs has. */
export function defaultWasmThreads(): number {
  const cores =
    (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 1;
  return Math.min(WASM_MAX_THREADS, Math.max(1, cores));
}

const messageOf = (error: unknown) =>
  (error instanceof Error ? error.message : String(error)) || 'unknown error';
const threadWord = (n: number) => `${n} thread${n === 1 ? '' : 's'}`;

/** wasm with threads when the page can have them, else (or when that fails) on one thread. */
async function startWasm(options: BackendOptions): Promise<BackendChoice> {
  const wasm = await loadWasm(options);
  const notes: string[] = [];
  let threaded =
    runningBackend() === 'wasm' && Boolean(await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT'));
  if (runningBackend() !== 'wasm' && (await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT'))) {
    try {
      await attempt('wasm-threads', options);
      threaded = true;
    } catch (error) {
      notes.push(`wasm with threads failed to start (${messageOf(error)}), so it runs on one thread`);
    }
  }
  if (runningBackend() !== 'wasm') {
    try {
      await attempt('wasm', options);
    } catch (error) {
      throw new Error([...notes, `wasm on one thread failed to start (${messageOf(error)})`].join('; '), {
        cause: error,
      });
    }
  }
  const threads = wasm.getThreadsCount();
  const cores = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator
    ?.hardwareConcurrency;
  // Threads on but fewer than the cores: asked for (wasmThreads), or more than 8 cores.
  const capped =
    threaded && cores && threads < cores ? ` (threads on; ${threads} of the ${cores} logical cores)` : '';
  const reason = [`WebAssembly on the CPU, ${threadWord(threads)}${capped}`, ...notes].join('; ');
  return { backend: 'wasm', reason, threads, threaded };
}

/**
 * Switches tfjs to the named backend or throws a message saying why it is unavailable; the backend that was
 * running before stays in use then. Each start is time-bounded; wasm falls back from threads to one thread.
 */
export async function useBackend(name: BackendName, options: BackendOptions = {}): Promise<BackendChoice> {
  const adapter = name === 'webgpu' ? await probeWebGpu() : null;
  if (name === 'webgpu' && !adapter) {
    throw new Error('WebGPU is not available here (no GPU adapter). Choose the wasm or cpu backend.');
  }
  const previous = runningBackend();
  try {
    if (name === 'wasm') return await startWasm(options);
    await attempt(name, options);
  } catch (error) {
    if (previous && previous !== runningBackend()) await tf.setBackend(previous).catch(() => false);
    const others = BACKENDS.filter((b) => b !== name).join(' or ');
    throw new Error(
      `The ${name} backend failed to start: ${messageOf(error)}. Choose another backend (${others}).`,
      { cause: error },
    );
  }
  const reason =
    name === 'webgpu'
      ? adapter!.isFallbackAdapter
        ? `WebGPU on a software adapter (${adapter!.architecture || adapter!.vendor}): correct but much slower than wasm`
        : `WebGPU on ${adapter!.vendor} ${adapter!.architecture}`.trim()
      : 'plain JavaScript on the CPU (slowest)';
  return { backend: name, reason, ...(adapter ? { adapter } : {}) };
}

/**
 * Picks the fastest backend that starts: a hardware WebGPU adapter, else wasm (threads, else one thread),
 * else cpu. Never hangs: a start that takes longer than `startTimeoutMs` counts as failed. The reason says
 * what was chosen and what failed on the way.
 */
export async function pickBestBackend(options: BackendOptions = {}): Promise<BackendChoice> {
  const adapter = await probeWebGpu();
  const tried: string[] = [];
  if (adapter && !adapter.isFallbackAdapter) {
    try {
      return await useBackend('webgpu', options);
    } catch (error) {
      tried.push(messageOf(error));
    }
  }
  try {
    const choice = await startWasm(options);
    const why = adapter?.isFallbackAdapter
      ? `${choice.reason}; chosen because the only WebGPU adapter is a software fallback`
      : adapter
        ? choice.reason
        : `${choice.reason} (no WebGPU here)`;
    return { ...choice, reason: [why, ...tried].join('; '), ...(adapter ? { adapter } : {}) };
  } catch (error) {
    tried.push(messageOf(error));
  }
  await attempt('cpu', options);
  return { backend: 'cpu', reason: ['plain JavaScript on the CPU (slowest)', ...tried].join('; ') };
}

/**
 * The largest tensor the chosen backend takes in one buffer: for WebGPU the adapter's limits (tfjs asks
 * its device for the adapter's maxBufferSize and maxStorageBufferBindingSize); no limit on wasm and cpu.
 */
export function tensorByteLimit(choice: BackendChoice): number | undefined {
  if (choice.backend !== 'webgpu' || !choice.adapter) return undefined;
  return Math.min(choice.adapter.maxBufferSize, choice.adapter.maxStorageBufferBindingSize);
}
