/**
 * What a stretch of work costs the GPU in round trips: compute dispatches, bytes sent to the device and
 * bytes read back. On a real GPU these, not the arithmetic, decide how fast a small model trains: every
 * readback waits for the queue to drain, and every dispatch has a fixed cost.
 *
 * tfjs-backend-webgpu (4.22) funnels all of it through a few methods of its backend, which are wrapped
 * on the running instance while counting and restored afterwards:
 * - recordAndSubmit: one call per dispatchWorkgroups (ops tfjs runs on the CPU are not dispatches);
 * - uploadToGPU: a tensor whose values are still on the host is copied to a GPU buffer (mapped staging);
 * - makeUniforms: each dispatch's uniforms, sent with queue.writeBuffer;
 * - getBufferData: a copy into a staging buffer, mapAsync and read (what `read`/`data()` use);
 * - readSync: the synchronous read (`dataSync()`), which goes through a canvas instead.
 */
import { tf } from '../tf';

export interface GpuCounts {
  /** Compute dispatches. */
  dispatches: number;
  /** Tensors uploaded from the host. */
  uploads: number;
  /** Bytes written to the device: uploaded tensors plus every dispatch's uniforms. */
  uploadedBytes: number;
  /** Reads from the device to the host, each of which waits for the GPU to finish. */
  readbacks: number;
  readbackBytes: number;
}

/** The parts of tfjs-backend-webgpu's backend that are wrapped (private there, so declared here). */
interface WebGpuInternals {
  tensorMap: { get(dataId: object): { values: unknown; resource?: { size: number } } | undefined };
  recordAndSubmit(...args: unknown[]): unknown;
  uploadToGPU(dataId: object): void;
  makeUniforms(...args: unknown[]): { size: number };
  getBufferData(buffer: { size: number }): Promise<unknown>;
  readSync(dataId: object): unknown;
}

const WRAPPED = ['recordAndSubmit', 'uploadToGPU', 'makeUniforms', 'getBufferData', 'readSync'] as const;

const zero = (): GpuCounts => ({
  dispatches: 0,
  uploads: 0,
  uploadedBytes: 0,
  readbacks: 0,
  readbackBytes: 0,
});

/**
 * Counts the GPU traffic of the webgpu backend between start() and stop(). Only one counter can run on a
 * backend at a time. Throws if tfjs is not computing on webgpu.
 */
export class GpuCounters {
  private counts = zero();
  private backend: WebGpuInternals | null = null;

  start(): void {
    if (this.backend) throw new Error('These GPU counters are already counting; stop them first.');
    if (tf.getBackend() !== 'webgpu')
      throw new Error(`GPU counters need the webgpu backend (tfjs runs on ${tf.getBackend()}).`);
    const backend = tf.backend() as unknown as WebGpuInternals;
    if (WRAPPED.some((name) => Object.prototype.hasOwnProperty.call(backend, name))) {
      throw new Error('Another GPU counter is already counting on this backend.');
    }
    this.counts = zero();
    const counts = this.counts;
    const original = Object.fromEntries(WRAPPED.map((name) => [name, backend[name]])) as Pick<
      WebGpuInternals,
      (typeof WRAPPED)[number]
    >;
    // A tensor's bytes as the backend stores it (4 per element for every dtype it keeps on the GPU).
    const hostBytes = (dataId: object) => {
      const data = backend.tensorMap.get(dataId);
      return data && data.values != null && data.resource == null
        ? (data.values as ArrayLike<number>).length * 4
        : 0;
    };
    backend.recordAndSubmit = function (...args) {
      counts.dispatches++;
      return original.recordAndSubmit.apply(this, args);
    };
    backend.uploadToGPU = function (dataId) {
      const bytes = hostBytes(dataId);
      if (bytes > 0) {
        counts.uploads++;
        counts.uploadedBytes += bytes;
      }
      original.uploadToGPU.call(this, dataId);
    };
    backend.makeUniforms = function (...args) {
      const uniforms = original.makeUniforms.apply(this, args);
      counts.uploadedBytes += uniforms.size;
      return uniforms;
    };
    backend.getBufferData = function (buffer) {
      counts.readbacks++;
      counts.readbackBytes += buffer.size;
      return original.getBufferData.call(this, buffer);
    };
    backend.readSync = function (dataId) {
      const data = backend.tensorMap.get(dataId);
      if (data && data.values == null && data.resource) {
        counts.readbacks++;
        counts.readbackBytes += data.resource.size;
      }
      return original.readSync.call(this, dataId);
    };
    this.backend = backend;
  }

  /** Stops counting, puts the backend's own methods back, and returns what was counted. */
  stop(): GpuCounts {
    const backend = this.backend;
    if (!backend) throw new Error('These GPU counters were not started.');
    // The wrappers are own properties of the instance; deleting them uncovers the class's methods.
    for (const name of WRAPPED) delete (backend as unknown as Record<string, unknown>)[name];
    this.backend = null;
    return { ...this.counts };
  }
}

/** Counts the GPU traffic of `run` (which may be async) on the webgpu backend. */
export async function countGpuWork<T>(run: () => Promise<T> | T): Promise<{ result: T; counts: GpuCounts }> {
  const counters = new GpuCounters();
  counters.start();
  try {
    const result = await run();
    return { result, counts: counters.stop() };
  } catch (error) {
    counters.stop();
    throw error;
  }
}
