/**
 * The safetensors format (https://huggingface.co/docs/safetensors): an 8-byte little-endian header
 * length N, N bytes of JSON describing every tensor (dtype, shape, byte range), then the raw data.
 * The header is untrusted input: everything in it is checked before any buffer is sized from it, so a
 * damaged or hostile file fails with a message instead of allocating gigabytes.
 */
import type { WeightsSource } from './weights-source';

export class SafetensorsError extends Error {
  override name = 'SafetensorsError';
}

/** The dtypes webtune can read; everything is converted to float32 on load. */
export type DType = 'F32' | 'F16' | 'BF16';

export interface TensorEntry {
  name: string;
  dtype: DType;
  shape: number[];
  /** Absolute byte offsets in the file: 8 + headerLength + data_offsets. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  tensors: TensorEntry[];
  metadata: Record<string, string>;
  headerLength: number;
  /** Absolute offset of the first data byte (8 + headerLength). */
  dataStart: number;
}

export interface HostTensor {
  shape: number[];
  data: Float32Array;
  /** What the checkpoint stored (the data is widened to float32); absent: float32 or generated. */
  dtype?: DType;
}

const BYTES_PER_ELEMENT: Record<DType, number> = { F32: 4, F16: 2, BF16: 2 };

/** Valid safetensors dtypes that webtune does not read (quantized, integer, double). */
const KNOWN_UNSUPPORTED = new Set([
  'F64',
  'I64',
  'I32',
  'I16',
  'I8',
  'U64',
  'U32',
  'U16',
  'U8',
  'BOOL',
  'F8_E4M3',
  'F8_E5M2',
  'F8_E8M0',
  'F6_E2M3',
  'F6_E3M2',
  'F4',
  'C64',
]);

/** The spec's own limit: a larger header is treated as corrupt rather than read. */
const MAX_HEADER_BYTES = 100_000_000;

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const isCount = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0;

function elementCount(shape: number[]): number {
  let count = 1;
  for (const dim of shape) count *= dim;
  return count;
}

function readHeaderLength(prefix: Uint8Array): number {
  const view = new DataView(prefix.buffer, prefix.byteOffset, 8);
  // Two 32-bit halves: exact up to 2^53, and a huge value stays huge instead of wrapping around.
  return view.getUint32(0, true) + view.getUint32(4, true) * 2 ** 32;
}

export function parseSafetensorsHeader(
  prefix: Uint8Array,
  fileSize: number,
  fileName = 'model.safetensors',
): SafetensorsHeader {
  const fail = (problem: string, advice = 'Download the file again.') =>
    new SafetensorsError(`${fileName} ${problem}. ${advice}`);
  const corrupt = 'The file is damaged or was not saved correctly; download it again.';

  if (fileSize < 8) throw fail(`is not a safetensors file: it has only ${fileSize} bytes`);
  if (prefix.byteLength < 8)
    throw fail(
      `could not be read: only ${prefix.byteLength} of its first 8 bytes were given`,
      'Read more of the file before parsing it.',
    );
  const headerLength = readHeaderLength(prefix);
  if (headerLength < 2) throw fail(`is not a safetensors file: its header length is ${headerLength} bytes`);
  if (headerLength > MAX_HEADER_BYTES) {
    throw fail(
      `is not a safetensors file: its header claims ${headerLength} bytes, more than the 100 MB the format allows`,
      'Check that you picked the right file, or download it again.',
    );
  }
  const dataStart = 8 + headerLength;
  if (dataStart > fileSize)
    throw fail(`is truncated: its header needs ${dataStart} bytes but the file has ${fileSize} bytes`);
  if (prefix.byteLength < dataStart) {
    throw fail(
      `could not be parsed: its header needs the first ${dataStart} bytes but only ${prefix.byteLength} were read`,
      'Read the whole header before parsing it.',
    );
  }

  const headerBytes = prefix.subarray(8, dataStart);
  if (headerBytes[0] !== 0x7b)
    throw fail('is not a safetensors file: its header does not start with "{"', corrupt);
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch (error) {
    throw fail(`has a header that is not valid UTF-8 JSON (${(error as Error).message})`, corrupt);
  }
  if (!isPlainObject(parsed)) throw fail('has a header that is not a JSON object', corrupt);

  const metadata: Record<string, string> = {};
  const tensors: TensorEntry[] = [];
  for (const [name, info] of Object.entries(parsed)) {
    if (name === '__metadata__') {
      if (!isPlainObject(info) || Object.values(info).some((v) => typeof v !== 'string')) {
        throw fail('has invalid __metadata__: it must map names to strings', corrupt);
      }
      Object.assign(metadata, info);
      continue;
    }
    tensors.push(parseEntry(name, info, dataStart, fileSize, fail));
  }

  const byBegin = [...tensors].sort((a, b) => a.begin - b.begin || a.end - b.end);
  for (let i = 1; i < byBegin.length; i++) {
    const [previous, current] = [byBegin[i - 1], byBegin[i]];
    if (current.begin < previous.end) {
      throw fail(
        `is corrupt: tensors '${previous.name}' and '${current.name}' overlap (bytes ${previous.begin}-${previous.end} and ${current.begin}-${current.end})`,
      );
    }
  }
  return { tensors, metadata, headerLength, dataStart };
}

function parseEntry(
  name: string,
  info: unknown,
  dataStart: number,
  fileSize: number,
  fail: (problem: string, advice?: string) => SafetensorsError,
): TensorEntry {
  const corrupt = 'The file is damaged; download it again.';
  if (!isPlainObject(info))
    throw fail(`has an invalid entry for tensor '${name}': expected an object`, corrupt);
  const { dtype, shape, data_offsets: offsets } = info;
  if (typeof dtype !== 'string') throw fail(`has no dtype for tensor '${name}'`, corrupt);
  if (KNOWN_UNSUPPORTED.has(dtype)) {
    throw fail(
      `stores tensor '${name}' as ${dtype}, which webtune cannot read`,
      'Use a float32, float16 or bfloat16 version of the model (not a quantized one).',
    );
  }
  if (!(dtype in BYTES_PER_ELEMENT))
    throw fail(`stores tensor '${name}' with unknown dtype '${dtype}'`, corrupt);
  if (!Array.isArray(shape) || !shape.every(isCount)) {
    throw fail(`has an invalid shape for tensor '${name}': ${JSON.stringify(shape)}`, corrupt);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount) || offsets[0] > offsets[1]) {
    throw fail(`has invalid data_offsets for tensor '${name}': ${JSON.stringify(offsets)}`, corrupt);
  }
  const [start, stop] = offsets as [number, number];
  const expectedBytes = elementCount(shape) * BYTES_PER_ELEMENT[dtype as DType];
  if (stop - start !== expectedBytes) {
    throw fail(
      `is corrupt: tensor '${name}' (${dtype}, shape [${shape.join(', ')}]) needs ${expectedBytes} bytes but its data_offsets span ${stop - start}`,
    );
  }
  const [begin, end] = [dataStart + start, dataStart + stop];
  if (end > fileSize)
    throw fail(`is truncated: tensor '${name}' ends at byte ${end} but the file has ${fileSize} bytes`);
  return { name, dtype: dtype as DType, shape: [...shape], begin, end };
}

/** IEEE 754 half → float32 bit pattern (exact; subnormals become normal floats, NaN payloads kept). */
function halfToFloatBits(half: number): number {
  const sign = (half & 0x8000) << 16;
  const exponent = (half >> 10) & 0x1f;
  let fraction = half & 0x3ff;
  if (exponent === 0x1f) return (sign | 0x7f800000 | (fraction << 13)) >>> 0;
  if (exponent !== 0) return (sign | ((exponent - 15 + 127) << 23) | (fraction << 13)) >>> 0;
  if (fraction === 0) return sign >>> 0;
  // Subnormal: shift the fraction up until its leading 1 becomes the implicit bit.
  let unbiased = -14;
  while ((fraction & 0x400) === 0) {
    fraction <<= 1;
    unbiased--;
  }
  return (sign | ((unbiased + 127) << 23) | ((fraction & 0x3ff) << 13)) >>> 0;
}

/**
 * Converts one tensor to a new Float32Array. `bytes` is the whole file or a slice of it that starts at
 * absolute file offset `byteOffset`. Assumes a little-endian host, as every browser and Node platform is.
 */
export function tensorToFloat32(bytes: Uint8Array, entry: TensorEntry, byteOffset = 0): Float32Array {
  const start = entry.begin - byteOffset;
  const length = entry.end - entry.begin;
  if (start < 0 || start + length > bytes.byteLength) {
    throw new SafetensorsError(
      `Tensor '${entry.name}' (bytes ${entry.begin}-${entry.end}) is not inside the ${bytes.byteLength} bytes read from offset ${byteOffset}. Read the part of the file that holds it.`,
    );
  }
  const source = bytes.subarray(start, start + length);
  const count = length / BYTES_PER_ELEMENT[entry.dtype];
  const out = new Float32Array(count);
  if (entry.dtype === 'F32') {
    // Copying bytes (not floats) works whatever the source alignment.
    new Uint8Array(out.buffer).set(source);
    return out;
  }
  const bits = new Uint32Array(out.buffer);
  if (entry.dtype === 'BF16') {
    for (let i = 0; i < count; i++) bits[i] = ((source[2 * i] | (source[2 * i + 1] << 8)) << 16) >>> 0;
  } else {
    for (let i = 0; i < count; i++) bits[i] = halfToFloatBits(source[2 * i] | (source[2 * i + 1] << 8));
  }
  return out;
}

/**
 * The header of a file read through `source`: its first 8 bytes, then as many as the header says it has
 * (nothing is read when the length is past the format's limit or the file's end; the parser says which).
 */
export function readSafetensorsHeader(source: WeightsSource): SafetensorsHeader {
  const size = source.byteLength;
  const first = source.read(0, Math.min(8, size));
  let prefix = first;
  if (first.byteLength === 8) {
    const dataStart = 8 + readHeaderLength(first);
    if (dataStart <= size && dataStart <= 8 + MAX_HEADER_BYTES) prefix = source.read(0, dataStart);
  }
  return parseSafetensorsHeader(prefix, size, source.name);
}

/** One tensor of a file read through `source`, converted to float32: only its own bytes are read. */
export function readTensor(source: WeightsSource, entry: TensorEntry): Float32Array {
  return tensorToFloat32(source.read(entry.begin, entry.end - entry.begin), entry, entry.begin);
}

export function readSafetensors(
  bytes: Uint8Array,
  fileName = 'model.safetensors',
): {
  metadata: Record<string, string>;
  tensors: Map<string, { dtype: DType; shape: number[]; data: Float32Array }>;
} {
  const header = parseSafetensorsHeader(bytes, bytes.byteLength, fileName);
  const tensors = new Map<string, { dtype: DType; shape: number[]; data: Float32Array }>();
  for (const entry of header.tensors) {
    tensors.set(entry.name, { dtype: entry.dtype, shape: entry.shape, data: tensorToFloat32(bytes, entry) });
  }
  return { metadata: header.metadata, tensors };
}

/** Writes float32 tensors in the given order, laid out back to back, header padded to 8 bytes with spaces. */
export function writeSafetensors(
  tensors: Iterable<[string, HostTensor]>,
  metadata?: Record<string, string>,
): Uint8Array {
  // No prototype, so a tensor named like an Object member ('constructor', '__proto__') is just a name.
  const header: Record<string, unknown> = Object.create(null);
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  const blobs: Float32Array[] = [];
  let offset = 0;
  for (const [name, { shape, data }] of tensors) {
    if (name === '__metadata__' || name in header)
      throw new SafetensorsError(`Cannot save tensor '${name}': the name is used twice or reserved.`);
    if (elementCount(shape) !== data.length) {
      throw new SafetensorsError(
        `Cannot save tensor '${name}': shape [${shape.join(', ')}] needs ${elementCount(shape)} values but ${data.length} were given.`,
      );
    }
    header[name] = { dtype: 'F32', shape, data_offsets: [offset, offset + data.byteLength] };
    blobs.push(data);
    offset += data.byteLength;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerLength = Math.ceil(json.byteLength / 8) * 8;
  const out = new Uint8Array(8 + headerLength + offset);
  const view = new DataView(out.buffer);
  view.setUint32(0, headerLength % 2 ** 32, true);
  view.setUint32(4, Math.floor(headerLength / 2 ** 32), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.byteLength, 8 + headerLength);
  let position = 8 + headerLength;
  for (const data of blobs) {
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), position);
    position += data.byteLength;
  }
  return out;
}
