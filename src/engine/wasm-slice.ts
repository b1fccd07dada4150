/**
 * Slice, SplitV and Unpack for tfjs-wasm that read their input in place. tfjs-wasm's own copy the whole
 * input out of the wasm heap (readSync) before taking each part, so cutting a tensor into n parts
 * costs n whole copies: unstacking attention's [B·heads, T, S] tensor cost more than the products.
 */
import { tf } from './tf';

type TensorInfo = { dataId: object; shape: number[]; dtype: tf.DataType };
interface WasmBackend {
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
  /** A view of the tensor's bytes in the heap (valid until the heap next grows). */
  typedArrayFromHeap(t: TensorInfo): Float32Array | Int32Array | Uint8Array;
}
type KernelArgs = {
  inputs: Record<string, TensorInfo>;
  attrs: Record<string, unknown>;
  backend: WasmBackend;
};

const strides = (shape: number[]) => shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));

/** x[begin : begin + size] for a numeric tensor, copied run by run from a view of the heap. */
function sliceInPlace(backend: WasmBackend, x: TensorInfo, begin: number[], size: number[]): TensorInfo {
  const out = backend.makeOutput(size, x.dtype);
  // Views are taken after makeOutput: a heap that grows detaches the views made before.
  const src = backend.typedArrayFromHeap(x);
  const dst = backend.typedArrayFromHeap(out);
  const rank = x.shape.length;
  if (rank === 0 || dst.length === 0) {
    dst.set(src.subarray(0, dst.length));
    return out;
  }
  const stride = strides(x.shape);
  // Axes after `inner` are taken whole, so each run of the copy spans them all.
  let inner = rank - 1;
  while (inner > 0 && size[inner] === x.shape[inner]) inner--;
  const run = size[inner] * stride[inner];
  const index = new Array<number>(inner).fill(0);
  for (let offset = 0; offset < dst.length; offset += run) {
    let from = begin[inner] * stride[inner];
    for (let a = 0; a < inner; a++) from += (begin[a] + index[a]) * stride[a];
    dst.set(src.subarray(from, from + run), offset);
    for (let a = inner - 1; a >= 0; a--) {
      if (++index[a] < size[a]) break;
      index[a] = 0;
    }
  }
  return out;
}

/** begin/size as tfjs's Slice takes them (size −1: to the end). */
function resolve(x: TensorInfo, begin: number[], size: number[]): [number[], number[]] {
  const b = x.shape.map((_, i) => begin[i] ?? 0);
  return [b, x.shape.map((d, i) => (size[i] === undefined || size[i] === -1 ? d - b[i] : size[i]))];
}

const kernels: Record<string, (args: KernelArgs) => TensorInfo | TensorInfo[]> = {
  Slice({ inputs: { x }, attrs, backend }) {
    const [begin, size] = resolve(
      x,
      typeof attrs.begin === 'number' ? [attrs.begin] : (attrs.begin as number[]),
      typeof attrs.size === 'number' ? [attrs.size] : (attrs.size as number[]),
    );
    return sliceInPlace(backend, x, begin, size);
  },
  SplitV({ inputs: { x }, attrs, backend }) {
    const axis = ((attrs.axis as number) + x.shape.length) % x.shape.length;
    const parts = attrs.numOrSizeSplits as number | number[];
    const sizes =
      typeof parts === 'number' ? new Array<number>(parts).fill(x.shape[axis] / parts) : [...parts];
    const missing = sizes.indexOf(-1);
    if (missing >= 0)
      sizes[missing] = x.shape[axis] - sizes.filter((s) => s !== -1).reduce((a, b) => a + b, 0);
    const begin = new Array<number>(x.shape.length).fill(0);
    return sizes.map((s) => {
      const size = [...x.shape];
      size[axis] = s;
      const part = sliceInPlace(backend, x, [...begin], size);
      begin[axis] += s;
      return part;
    });
  },
  Unpack({ inputs: { value }, attrs, backend }) {
    const axis = ((attrs.axis as number) + value.shape.length) % value.shape.length;
    const shape = value.shape.filter((_, i) => i !== axis);
    return Array.from({ length: value.shape[axis] }, (_, i) => {
      const begin = value.shape.map((_, a) => (a === axis ? i : 0));
      const size = value.shape.map((d, a) => (a === axis ? 1 : d));
      return { ...sliceInPlace(backend, value, begin, size), shape };
    });
  },
};

let registered = false;

/**
 * Replaces tfjs-wasm's Slice, SplitV and Unpack with the in-place ones (strings still take the originals).
 */
export function registerWasmSlices(): void {
  if (registered) return;
  registered = true;
  for (const [name, fast] of Object.entries(kernels)) {
    const original = tf.getKernel(name, 'wasm');
    if (!original) continue;
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel({
      ...original,
      kernelFunc: ((args: KernelArgs) =>
        Object.values(args.inputs)[0].dtype === 'string'
          ? original.kernelFunc(args as never)
          : fast(args)) as unknown as tf.KernelFunc,
    });
  }
}
