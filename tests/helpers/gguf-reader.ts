/**
 * A small GGUF reader written from the format's description (ggml's docs/gguf.md), independent of the
 * writer: tests parse webtune's files back with it.
 */
export type Value = number | bigint | boolean | string | Value[];

export interface ParsedGguf {
  version: number;
  metadata: Map<string, { type: number; value: Value; itemType?: number }>;
  tensors: { name: string; dims: number[]; type: number; offset: number }[];
  /** Where the data section starts (the end of the header, aligned). */
  dataStart: number;
  bytes: Uint8Array;
}

export function readGguf(bytes: Uint8Array): ParsedGguf {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let at = 0;
  const u32 = () => {
    const v = view.getUint32(at, true);
    at += 4;
    return v;
  };
  const u64 = () => {
    const v = view.getBigUint64(at, true);
    at += 8;
    return v;
  };
  const count = () => Number(u64());
  const string = () => {
    const n = count();
    const s = decoder.decode(bytes.subarray(at, at + n));
    at += n;
    return s;
  };
  const scalar = (type: number): Value => {
    switch (type) {
      case 0:
        return view.getUint8(at++);
      case 1:
        return view.getInt8(at++);
      case 2: {
        const v = view.getUint16(at, true);
        at += 2;
        return v;
      }
      case 3: {
        const v = view.getInt16(at, true);
        at += 2;
        return v;
      }
      case 4:
        return u32();
      case 5: {
        const v = view.getInt32(at, true);
        at += 4;
        return v;
      }
      case 6: {
        const v = view.getFloat32(at, true);
        at += 4;
        return v;
      }
      case 7: {
        const v = view.getUint8(at++);
        if (v > 1) throw new Error(`bool ${v}`);
        return v === 1;
      }
      case 8:
        return string();
      case 10:
        return u64();
      case 11: {
        const v = view.getBigInt64(at, true);
        at += 8;
        return v;
      }
      case 12: {
        const v = view.getFloat64(at, true);
        at += 8;
        return v;
      }
      default:
        throw new Error(`unknown value type ${type} at ${at}`);
    }
  };
  if (decoder.decode(bytes.subarray(0, 4)) !== 'GGUF') throw new Error('not a GGUF file');
  at = 4;
  const version = u32();
  const tensorCount = count();
  const kvCount = count();
  const metadata: ParsedGguf['metadata'] = new Map();
  for (let i = 0; i < kvCount; i++) {
    const key = string();
    const type = u32();
    if (type === 9) {
      const itemType = u32();
      const n = count();
      const items: Value[] = [];
      for (let j = 0; j < n; j++) items.push(scalar(itemType));
      metadata.set(key, { type, itemType, value: items });
    } else {
      metadata.set(key, { type, value: scalar(type) });
    }
  }
  const tensors: ParsedGguf['tensors'] = [];
  for (let i = 0; i < tensorCount; i++) {
    const name = string();
    const nDims = u32();
    const dims: number[] = [];
    for (let d = 0; d < nDims; d++) dims.push(count());
    tensors.push({ name, dims, type: u32(), offset: count() });
  }
  const alignment = Number(metadata.get('general.alignment')?.value ?? 32);
  const dataStart = Math.ceil(at / alignment) * alignment;
  return { version, metadata, tensors, dataStart, bytes };
}

/** Metadata values by key (plain values, arrays as arrays). */
export function metadataValues(parsed: ParsedGguf): Record<string, Value> {
  return Object.fromEntries([...parsed.metadata].map(([k, v]) => [k, v.value]));
}

/**
 * A tensor's data as float32: f32 read directly, f16 decoded, Q8_0 decoded block by block (34 bytes: d as
 * f16, then 32 int8 q; value = d · q).
 */
export function tensorValues(parsed: ParsedGguf, name: string): Float32Array {
  const t = parsed.tensors.find((x) => x.name === name);
  if (!t) throw new Error(`no tensor ${name}`);
  if (t.type > 1 && t.type !== 8) throw new Error(`tensor ${name} has type ${t.type}, not f32, f16 or q8_0`);
  const n = t.dims.reduce((a, b) => a * b, 1);
  const start = parsed.dataStart + t.offset;
  const view = new DataView(parsed.bytes.buffer, parsed.bytes.byteOffset + start);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    if (t.type === 8) {
      const block = Math.floor(i / 32) * 34;
      out[i] = halfToFloat(view.getUint16(block, true)) * view.getInt8(block + 2 + (i % 32));
    } else out[i] = t.type === 0 ? view.getFloat32(i * 4, true) : halfToFloat(view.getUint16(i * 2, true));
  }
  return out;
}

/** binary16 → number, from the definition: (−1)^s · 2^(e−15) · 1.m, subnormals 2^−14 · 0.m. */
export function halfToFloat(h: number): number {
  const s = h >> 15 ? -1 : 1;
  const e = (h >> 10) & 31;
  const m = h & 1023;
  if (e === 31) return m ? NaN : s * Infinity;
  return e === 0 ? s * Math.pow(2, -14) * (m / 1024) : s * Math.pow(2, e - 15) * (1 + m / 1024);
}
