/** The GGUF writer, read back by an independent parser; float16 rounding against known values. */
import { describe, expect, it } from 'vitest';
import { writeGguf, type GgufTensor } from '../src/formats/gguf';
import { float16Bits, float16ToNumber } from '../src/engine/half';
import { halfToFloat, metadataValues, readGguf, tensorValues } from './helpers/gguf-reader';

async function written(metadata: Parameters<typeof writeGguf>[1], tensors: GgufTensor[]) {
  const chunks: Uint8Array[] = [];
  await writeGguf({ write: (c) => void chunks.push(c.slice()) }, metadata, tensors);
  const bytes = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.byteLength;
  }
  return { bytes, chunks };
}

describe('float16', () => {
  // From the IEEE 754 binary16 definition (the usual table of examples), not from the code under test.
  const KNOWN: [number, number][] = [
    [0, 0x0000],
    [-0, 0x8000],
    [1, 0x3c00],
    [-2, 0xc000],
    [0.5, 0x3800],
    [65504, 0x7bff],
    [0.1, 0x2e66],
    [1 / 3, 0x3555],
    [0.99951171875, 0x3bff],
    [1.0009765625, 0x3c01],
    [2 ** -14, 0x0400],
    [2 ** -24, 0x0001],
    [0.000060975551605224609375, 0x03ff],
    [-(2 ** -24), 0x8001],
    [Infinity, 0x7c00],
    [-Infinity, 0xfc00],
    // rounding: ties go to the even neighbour, overflow goes to infinity, underflow to zero
    [1 + 2 ** -11, 0x3c00],
    [1 + 3 * 2 ** -11, 0x3c02],
    [1 + 2 ** -11 + 2 ** -20, 0x3c01],
    [65519, 0x7bff],
    [65520, 0x7c00],
    [1e6, 0x7c00],
    [-1e6, 0xfc00],
    [2 ** -25, 0x0000],
    [-(2 ** -25), 0x8000],
    [2 ** -25 * 1.0000001, 0x0001],
    [3 * 2 ** -25, 0x0002],
    [5 * 2 ** -25, 0x0002],
    [2 ** -26, 0x0000],
    [1e-8, 0x0000],
    [1e-45, 0x0000],
    [2 ** -14 - 2 ** -25, 0x0400],
  ];

  it('rounds known values as IEEE binary16 does', () => {
    for (const [value, bits] of KNOWN)
      expect(float16Bits(value).toString(16), String(value)).toBe(bits.toString(16));
    const nan = float16Bits(NaN);
    expect((nan & 0x7c00) === 0x7c00 && (nan & 0x3ff) !== 0).toBe(true);
  });

  it('keeps every half-precision value and rounds every midpoint to the even neighbour', () => {
    for (let h = 0; h < 0x10000; h++) {
      const value = halfToFloat(h);
      if (Number.isNaN(value)) continue;
      expect(float16Bits(value)).toBe(h);
      expect(Object.is(float16ToNumber(h), value)).toBe(true);
      const next = h + 1;
      if ((h & 0x7fff) < 0x7bff + 1 && (next & 0x7fff) <= 0x7c00 && (next & 0x8000) === (h & 0x8000)) {
        const mid = (value + halfToFloat(next)) / 2; // exact in float32: 12 significant bits
        expect(float16Bits(mid)).toBe(h % 2 === 0 ? h : next);
      }
    }
  });
});

describe('writeGguf', () => {
  const matrix = Float32Array.from({ length: 3 * 5 }, (_, i) => (i - 7) / 8); // exact in f16 too
  const vector = Float32Array.from([1.5, -2.25, 3, 0.1, 7]);

  it('writes a header, metadata of every type and aligned tensors that an independent reader reads back', async () => {
    const { bytes } = await written(
      [
        ['a.u8', { type: 'uint8', value: 255 }],
        ['a.i8', { type: 'int8', value: -128 }],
        ['a.u16', { type: 'uint16', value: 65535 }],
        ['a.i16', { type: 'int16', value: -32768 }],
        ['a.u32', { type: 'uint32', value: 4_000_000_000 }],
        ['a.i32', { type: 'int32', value: -2_000_000_000 }],
        ['a.f32', { type: 'float32', value: 1.5 }],
        ['a.f64', { type: 'float64', value: Math.PI }],
        ['a.u64', { type: 'uint64', value: 2n ** 63n }],
        ['a.i64', { type: 'int64', value: -5n }],
        ['a.bool', { type: 'bool', value: true }],
        ['a.str', { type: 'string', value: 'héllo ▁ 🙂' }],
        ['a.strs', { type: 'array', itemType: 'string', value: ['x', '', '<0x0A>'] }],
        ['a.i32s', { type: 'array', itemType: 'int32', value: [1, -2, 3] }],
        ['a.f32s', { type: 'array', itemType: 'float32', value: [0.5, -1000] }],
      ],
      [
        { name: 'm', dims: [5, 3], type: 'f32', read: () => matrix },
        { name: 'v', dims: [5], type: 'f32', read: () => vector },
        { name: 'h', dims: [5, 3], type: 'f16', read: () => matrix },
      ],
    );
    const parsed = readGguf(bytes);
    expect(parsed.version).toBe(3);
    expect(metadataValues(parsed)).toEqual({
      'a.u8': 255,
      'a.i8': -128,
      'a.u16': 65535,
      'a.i16': -32768,
      'a.u32': 4_000_000_000,
      'a.i32': -2_000_000_000,
      'a.f32': 1.5,
      'a.f64': Math.PI,
      'a.u64': 2n ** 63n,
      'a.i64': -5n,
      'a.bool': true,
      'a.str': 'héllo ▁ 🙂',
      'a.strs': ['x', '', '<0x0A>'],
      'a.i32s': [1, -2, 3],
      'a.f32s': [0.5, -1000],
      'general.alignment': 32,
    });
    expect(parsed.metadata.get('general.alignment')!.type).toBe(4); // uint32
    expect(parsed.metadata.get('a.strs')!.itemType).toBe(8);
    // Offsets relative to the aligned data section, each tensor padded to 32 bytes: 60 → 64, 20 → 32.
    expect(parsed.tensors).toEqual([
      { name: 'm', dims: [5, 3], type: 0, offset: 0 },
      { name: 'v', dims: [5], type: 0, offset: 64 },
      { name: 'h', dims: [5, 3], type: 1, offset: 96 },
    ]);
    expect(parsed.dataStart % 32).toBe(0);
    expect(bytes.byteLength).toBe(parsed.dataStart + 96 + 32);
    expect(tensorValues(parsed, 'm')).toEqual(matrix);
    expect(tensorValues(parsed, 'v')).toEqual(vector);
    expect(tensorValues(parsed, 'h')).toEqual(matrix);
    // Padding is zeros.
    expect([...bytes.subarray(parsed.dataStart + 60, parsed.dataStart + 64)]).toEqual([0, 0, 0, 0]);
  });

  it('streams: the header first, then each tensor read only when its turn comes', async () => {
    const events: string[] = [];
    const sizes: number[] = [];
    const tensor = (name: string): GgufTensor => ({
      name,
      dims: [5, 3],
      type: 'f32',
      read: () => {
        events.push(`read ${name}`);
        return matrix;
      },
    });
    await writeGguf(
      {
        write: (c) => {
          events.push('write');
          sizes.push(c.byteLength);
        },
      },
      [['k', { type: 'string', value: 'v' }]],
      [tensor('a'), tensor('b')],
    );
    expect(events).toEqual(['write', 'read a', 'write', 'write', 'read b', 'write', 'write']);
    expect(sizes.slice(1)).toEqual([60, 4, 60, 4]);
  });

  it('writes Q8_0 as ggml blocks: per row, per 32 values, d as f16 then 32 int8 qs, 34 bytes a block', async () => {
    // From the format's definition (d = amax / 127, q = x / d): blocks whose d is 1, 0 (all zeros), 2 and ½
    // (`+ 0`: no -0 in the zero block, which the decoded values would not keep).
    const block = (scale: number) =>
      Array.from({ length: 32 }, (_, i) => (i === 0 ? 127 : i - 16) * scale + 0);
    const values = Float32Array.from([...block(1), ...block(0), ...block(2), ...block(0.5)]);
    const qs = block(1).map((q) => q & 0xff);
    const { bytes } = await written(
      [],
      [
        { name: 'q', dims: [64, 2], type: 'q8_0', read: () => values },
        { name: 'v', dims: [5], type: 'f32', read: () => vector },
      ],
    );
    const parsed = readGguf(bytes);
    // 4 blocks of 34 bytes = 136, padded to 160.
    expect(parsed.tensors).toEqual([
      { name: 'q', dims: [64, 2], type: 8, offset: 0 },
      { name: 'v', dims: [5], type: 0, offset: 160 },
    ]);
    const data = [...bytes.subarray(parsed.dataStart, parsed.dataStart + 160)];
    expect(data).toEqual([
      ...[0x00, 0x3c, ...qs],
      ...[0x00, 0x00, ...new Array(32).fill(0)],
      ...[0x00, 0x40, ...qs],
      ...[0x00, 0x38, ...qs],
      ...new Array(24).fill(0),
    ]);
    expect(tensorValues(parsed, 'q')).toEqual(values); // every value here is d · q exactly
    expect(tensorValues(parsed, 'v')).toEqual(vector);
    await expect(
      writeGguf(
        { write: () => {} },
        [],
        [{ name: 't', dims: [33, 1], type: 'q8_0', read: () => new Float32Array(33) }],
      ),
    ).rejects.toThrow(/33 values are not whole Q8_0 blocks of 32/);
  });

  it('refuses a read() whose length does not match the dims, duplicate names and bad dims', async () => {
    const sink = { write: () => {} };
    await expect(
      writeGguf(sink, [], [{ name: 't', dims: [4, 2], type: 'f32', read: () => new Float32Array(7) }]),
    ).rejects.toThrow(/gave 7 values.*hold 8/);
    await expect(
      writeGguf(
        sink,
        [],
        [
          { name: 't', dims: [1], type: 'f32', read: () => new Float32Array(1) },
          { name: 't', dims: [1], type: 'f32', read: () => new Float32Array(1) },
        ],
      ),
    ).rejects.toThrow(/twice/);
    await expect(
      writeGguf(sink, [], [{ name: 't', dims: [0], type: 'f32', read: () => new Float32Array(0) }]),
    ).rejects.toThrow(/positive integers/);
    await expect(writeGguf(sink, [['x', { type: 'uint32', value: 1.5 }]], [])).rejects.toThrow(
      /not a uint32/,
    );
  });
});
