/**
 * GGUF v3, the single-file format llama.cpp and Ollama read: a header (magic, version, counts), typed
 * key/value metadata, one info record per tensor (name, dims in GGML order, type, offset), then the
 * tensor data, each tensor starting on an `alignment` boundary. Everything is little-endian.
 *
 * The writer streams: every size is known from the shapes, so the header goes out first and the tensors
 * follow one at a time, each read (and converted) only when its turn comes.
 */
import { toHalfBytes } from '../engine/half';
import { Q8_0_BLOCK, quantizeQ8_0 } from '../engine/quant';
import type { ByteSink } from './sink';

/**
 * What GGUF cannot hold or llama.cpp could not read back as webtune means it, found before a byte is written.
 */
export class GgufExportError extends Error {
  override name = 'GgufExportError';
}

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian uint32
export const GGUF_VERSION = 3;
export const GGUF_ALIGNMENT = 32;

/** Metadata value types, numbered as the format numbers them. */
export const GGUF_VALUE_TYPE = {
  uint8: 0,
  int8: 1,
  uint16: 2,
  int16: 3,
  uint32: 4,
  int32: 5,
  float32: 6,
  bool: 7,
  string: 8,
  array: 9,
  uint64: 10,
  int64: 11,
  float64: 12,
} as const;
export type GgufScalarType = Exclude<keyof typeof GGUF_VALUE_TYPE, 'array'>;
type Scalar = number | bigint | boolean | string;

export type GgufValue =
  | { type: GgufScalarType; value: Scalar }
  | { type: 'array'; itemType: GgufScalarType; value: readonly Scalar[] };

/** Tensor data types this writer produces (GGML's numbering, ggml.h's enum ggml_type). */
export const GGML_TYPE = { f32: 0, f16: 1, q8_0: 8 } as const;
export type GgmlType = keyof typeof GGML_TYPE;

/** ggml's block_q8_0: d as f16, then 32 int8 qs. */
const Q8_0_BLOCK_BYTES = 2 + Q8_0_BLOCK;

export interface GgufTensor {
  name: string;
  /** Dimensions in GGML order: the fastest-varying first, so a row-major [out, in] matrix is [in, out]. */
  dims: number[];
  /** q8_0 needs dims[0] (the row) to be whole blocks of 32, as ggml does. */
  type: GgmlType;
  /** The values in row-major order of the reversed dims (a Hugging Face tensor as it is stored). */
  read(): Float32Array;
}

/** Scalar helpers, so metadata reads as `['llama.block_count', u32(5)]`. */
export const u32 = (value: number): GgufValue => ({ type: 'uint32', value });
export const i32 = (value: number): GgufValue => ({ type: 'int32', value });
export const f32 = (value: number): GgufValue => ({ type: 'float32', value });
export const bool = (value: boolean): GgufValue => ({ type: 'bool', value });
export const str = (value: string): GgufValue => ({ type: 'string', value });
export const arr = (itemType: GgufScalarType, value: readonly Scalar[]): GgufValue => ({
  type: 'array',
  itemType,
  value,
});

// ---- encoding ------------------------------------------------------------------------------------

const encoder = new TextEncoder();
const FLUSH_BYTES = 1 << 20;

/** Little-endian bytes into chunks of about a megabyte, handed to the sink as each fills. */
class ChunkWriter {
  private buffer = new Uint8Array(FLUSH_BYTES * 2);
  private view = new DataView(this.buffer.buffer);
  private length = 0;
  /** Bytes written so far, flushed or not. */
  written = 0;

  constructor(private readonly sink: ByteSink) {}

  private reserve(bytes: number): void {
    if (this.length + bytes <= this.buffer.byteLength) return;
    const bigger = new Uint8Array(Math.max(this.buffer.byteLength * 2, this.length + bytes));
    bigger.set(this.buffer.subarray(0, this.length));
    this.buffer = bigger;
    this.view = new DataView(bigger.buffer);
  }

  private advance(bytes: number): void {
    this.length += bytes;
    this.written += bytes;
  }

  u8(v: number) {
    this.reserve(1);
    this.view.setUint8(this.length, v);
    this.advance(1);
  }
  i8(v: number) {
    this.reserve(1);
    this.view.setInt8(this.length, v);
    this.advance(1);
  }
  u16(v: number) {
    this.reserve(2);
    this.view.setUint16(this.length, v, true);
    this.advance(2);
  }
  i16(v: number) {
    this.reserve(2);
    this.view.setInt16(this.length, v, true);
    this.advance(2);
  }
  u32(v: number) {
    this.reserve(4);
    this.view.setUint32(this.length, v, true);
    this.advance(4);
  }
  i32(v: number) {
    this.reserve(4);
    this.view.setInt32(this.length, v, true);
    this.advance(4);
  }
  f32(v: number) {
    this.reserve(4);
    this.view.setFloat32(this.length, v, true);
    this.advance(4);
  }
  f64(v: number) {
    this.reserve(8);
    this.view.setFloat64(this.length, v, true);
    this.advance(8);
  }
  u64(v: number | bigint) {
    this.reserve(8);
    this.view.setBigUint64(this.length, BigInt(v), true);
    this.advance(8);
  }
  i64(v: number | bigint) {
    this.reserve(8);
    this.view.setBigInt64(this.length, BigInt(v), true);
    this.advance(8);
  }
  bytes(b: Uint8Array) {
    this.reserve(b.byteLength);
    this.buffer.set(b, this.length);
    this.advance(b.byteLength);
  }
  string(s: string) {
    const b = encoder.encode(s);
    this.u64(b.byteLength);
    this.bytes(b);
  }
  zeros(n: number) {
    this.reserve(n);
    this.buffer.fill(0, this.length, this.length + n);
    this.advance(n);
  }

  async maybeFlush(): Promise<void> {
    if (this.length >= FLUSH_BYTES) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.length === 0) return;
    const chunk = this.buffer.slice(0, this.length);
    this.length = 0;
    await this.sink.write(chunk);
  }
}

function checkScalar(key: string, type: GgufScalarType, value: Scalar): void {
  const ok =
    type === 'string'
      ? typeof value === 'string'
      : type === 'bool'
        ? typeof value === 'boolean'
        : type === 'uint64' || type === 'int64'
          ? typeof value === 'bigint' || Number.isSafeInteger(value)
          : type === 'float32' || type === 'float64'
            ? typeof value === 'number'
            : Number.isInteger(value);
  if (!ok) throw new Error(`GGUF metadata ${key}: ${JSON.stringify(String(value))} is not a ${type}.`);
}

function writeScalar(out: ChunkWriter, type: GgufScalarType, value: Scalar): void {
  switch (type) {
    case 'uint8':
      return out.u8(value as number);
    case 'int8':
      return out.i8(value as number);
    case 'uint16':
      return out.u16(value as number);
    case 'int16':
      return out.i16(value as number);
    case 'uint32':
      return out.u32(value as number);
    case 'int32':
      return out.i32(value as number);
    case 'float32':
      return out.f32(value as number);
    case 'float64':
      return out.f64(value as number);
    case 'uint64':
      return out.u64(value as number | bigint);
    case 'int64':
      return out.i64(value as number | bigint);
    case 'bool':
      return out.u8(value ? 1 : 0);
    case 'string':
      return out.string(value as string);
  }
}

const padTo = (n: number, alignment: number) => Math.ceil(n / alignment) * alignment;

/** Bytes a tensor's data takes in the file, before its alignment padding (ggml_nbytes). */
export function tensorBytes(tensor: Pick<GgufTensor, 'dims' | 'type'>): number {
  const count = tensor.dims.reduce((n, d) => n * d, 1);
  if (tensor.type === 'q8_0') return (count / Q8_0_BLOCK) * Q8_0_BLOCK_BYTES;
  return count * (tensor.type === 'f16' ? 2 : 4);
}

/**
 * Rows of `cols` values as ggml's Q8_0: for each row, for each block of 32, d (f16, little-endian) then the
 * 32 int8 qs. The numbers are quantizeQ8_0's (llama.cpp's quantize_row_q8_0_ref); with whole blocks its
 * scales and quants hold no padding, so block k is scales[k] and quants[32k, 32k + 32).
 */
export function q8_0Bytes(values: Float32Array, cols: number): Uint8Array {
  const rows = values.length / cols;
  const { scales, quants } = quantizeQ8_0(values, rows, cols);
  const out = new Uint8Array(scales.length * Q8_0_BLOCK_BYTES);
  const qs = new Uint8Array(quants.buffer, quants.byteOffset, quants.byteLength);
  for (let k = 0; k < scales.length; k++) {
    const at = k * Q8_0_BLOCK_BYTES;
    out[at] = scales[k] & 0xff;
    out[at + 1] = scales[k] >>> 8;
    out.set(qs.subarray(k * Q8_0_BLOCK, (k + 1) * Q8_0_BLOCK), at + 2);
  }
  return out;
}

function tensorData(values: Float32Array, tensor: Pick<GgufTensor, 'dims' | 'type'>): Uint8Array {
  if (tensor.type === 'q8_0') return q8_0Bytes(values, tensor.dims[0]);
  // Little-endian host assumed, as everywhere in webtune (see half.ts).
  return tensor.type === 'f16'
    ? toHalfBytes(values, 'F16')
    : new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

/**
 * Writes a GGUF file to `sink`: the header and metadata (with `general.alignment` added), then each
 * tensor's data in the order given, read one at a time.
 */
export async function writeGguf(
  sink: ByteSink,
  metadata: [string, GgufValue][],
  tensors: GgufTensor[],
): Promise<void> {
  const keys = new Set<string>();
  for (const [key] of metadata) {
    if (keys.has(key)) throw new Error(`GGUF metadata ${key} is given twice.`);
    keys.add(key);
  }
  const entries: [string, GgufValue][] = keys.has('general.alignment')
    ? metadata
    : [...metadata, ['general.alignment', u32(GGUF_ALIGNMENT)]];
  const names = new Set<string>();
  for (const t of tensors) {
    if (names.has(t.name)) throw new Error(`GGUF tensor ${t.name} is given twice.`);
    names.add(t.name);
    if (t.dims.length === 0 || t.dims.length > 4 || t.dims.some((d) => !Number.isSafeInteger(d) || d <= 0)) {
      throw new Error(`GGUF tensor ${t.name}: dims [${t.dims.join(', ')}] must be 1 to 4 positive integers.`);
    }
    if (t.type === 'q8_0' && t.dims[0] % Q8_0_BLOCK !== 0) {
      throw new Error(
        `GGUF tensor ${t.name}: rows of ${t.dims[0]} values are not whole Q8_0 blocks of ${Q8_0_BLOCK}.`,
      );
    }
  }

  const out = new ChunkWriter(sink);
  out.u32(GGUF_MAGIC);
  out.u32(GGUF_VERSION);
  out.u64(tensors.length);
  out.u64(entries.length);
  for (const [key, v] of entries) {
    out.string(key);
    out.u32(GGUF_VALUE_TYPE[v.type]);
    if (v.type === 'array') {
      out.u32(GGUF_VALUE_TYPE[v.itemType]);
      out.u64(v.value.length);
      for (const item of v.value) {
        checkScalar(key, v.itemType, item);
        writeScalar(out, v.itemType, item);
        await out.maybeFlush();
      }
    } else {
      checkScalar(key, v.type, v.value);
      writeScalar(out, v.type, v.value);
    }
    await out.maybeFlush();
  }
  // Offsets are relative to the start of the (aligned) data section.
  let offset = 0;
  for (const t of tensors) {
    out.string(t.name);
    out.u32(t.dims.length);
    for (const d of t.dims) out.u64(d);
    out.u32(GGML_TYPE[t.type]);
    out.u64(offset);
    offset += padTo(tensorBytes(t), GGUF_ALIGNMENT);
  }
  out.zeros(padTo(out.written, GGUF_ALIGNMENT) - out.written);
  await out.flush();

  for (const t of tensors) {
    const values = t.read();
    const expected = t.dims.reduce((n, d) => n * d, 1);
    if (values.length !== expected) {
      throw new Error(
        `GGUF tensor ${t.name}: read() gave ${values.length} values, but dims [${t.dims.join(', ')}] hold ${expected}.`,
      );
    }
    const data = tensorData(values, t);
    await sink.write(data);
    const padding = padTo(data.byteLength, GGUF_ALIGNMENT) - data.byteLength;
    if (padding) await sink.write(new Uint8Array(padding));
  }
}
