/**
 * What webtune's own WGSL kernels share: when they run, and how one is registered with tfjs's webgpu
 * backend so that it is called like any other op (tidy, memory accounting and disposal all work).
 *
 * A program follows tfjs-backend-webgpu 4.22's conventions, which it uses to assemble the shader around
 * `getUserCode()`: each name in `variableNames` is a storage array of that input (`x[i]`), the output is
 * `result`, `uniforms.<name>` holds the fields declared in `uniforms` (filled, in order, from the
 * uniform list passed to runWebGPUProgram), and with a flat `dispatchLayout` the shader's entry point
 * calls `fn main(index : i32)` with the global invocation index.
 */
import type { WebGPUBackend, WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';
import { tf } from '../tf';

export type { WebGPUProgram };

/** Switches webtune's fused kernels off (for comparisons and the bench's before/after figures). */
export const fusedKernels = { enabled: true };

/** Whether the fused kernels run now: tfjs computes on webgpu and they are not switched off. */
export function fusedKernelsApply(): boolean {
  return fusedKernels.enabled && tf.getBackend() === 'webgpu';
}

export type ProgramUniform = { type: 'float32' | 'int32'; data: number[] };

/** Registers `kernelName` for the webgpu backend once; `run` builds and runs the program. */
export function registerWebGpuKernel(
  kernelName: string,
  run: (backend: WebGPUBackend, inputs: tf.TensorInfo[], attrs: Record<string, unknown>) => tf.TensorInfo,
  inputNames: string[],
): void {
  if (tf.getKernel(kernelName, 'webgpu')) return;
  tf.registerKernel({
    kernelName,
    backendName: 'webgpu',
    kernelFunc: ({ inputs, backend, attrs }) =>
      run(
        backend as WebGPUBackend,
        inputNames.map((name) => inputs[name] as tf.TensorInfo),
        attrs as Record<string, unknown>,
      ),
  });
}

/** Runs a registered kernel on float32 inputs (as tf.engine().runKernel, typed). */
export function runKernel<T extends tf.Tensor>(
  kernelName: string,
  inputs: Record<string, tf.Tensor>,
  attrs: Record<string, number> = {},
): T {
  return tf.engine().runKernel(kernelName, inputs as unknown as tf.NamedTensorMap, attrs) as T;
}

/** The smallest power of two at least `n`, capped: the workgroup size for one row of `n` values. */
export function rowWorkgroupSize(n: number, cap = 256): number {
  let size = 32;
  while (size < n && size < cap) size *= 2;
  return size;
}
