/**
 * Writing a safetensors file a tensor at a time: the header (every name, dtype, shape and byte range) is
 * known from the shapes alone, so it goes first and each tensor's values are converted only when their
 * turn comes. A merged model is therefore never held whole in memory.
 */
import type { DType } from '../engine/safetensors';
import { toHalfBytes } from '../engine/half';
import type { ByteSink } from './sink';

export interface StreamedTensor {
  name: string;
  shape: number[];
  read(): Float32Array;
}

const BYTES: Record<DType, number> = { F32: 4, F16: 2, BF16: 2 };

function encode(values: Float32Array, dtype: DType): Uint8Array {
  return dtype === 'F32'
    ? new Uint8Array(values.buffer, values.byteOffset, values.byteLength)
    : toHalfBytes(values, dtype);
}

/** Writes `tensors` in order, each as `dtypeOf(tensor)`; returns the bytes written. */
export async function streamSafetensors(
  sink: ByteSink,
  tensors: StreamedTensor[],
  dtypeOf: (t: StreamedTensor) => DType,
  metadata?: Record<string, string>,
): Promise<number> {
  const header: Record<string, unknown> = Object.create(null);
  if (metadata && Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    const count = t.shape.reduce((a, b) => a * b, 1);
    const bytes = count * BYTES[dtypeOf(t)];
    header[t.name] = { dtype: dtypeOf(t), shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerLength = Math.ceil(json.byteLength / 8) * 8;
  const prefix = new Uint8Array(8 + headerLength).fill(0x20);
  const view = new DataView(prefix.buffer);
  view.setUint32(0, headerLength, true);
  view.setUint32(4, 0, true);
  prefix.set(json, 8);
  await sink.write(prefix);
  for (const t of tensors) {
    const values = t.read();
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (values.length !== count)
      throw new Error(
        `Tensor "${t.name}" has ${values.length} values, but its shape [${t.shape}] needs ${count}.`,
      );
    await sink.write(encode(values, dtypeOf(t)));
  }
  return prefix.byteLength + offset;
}
