import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import {
  parseSafetensorsHeader,
  readSafetensors,
  SafetensorsError,
  tensorToFloat32,
  writeSafetensors,
} from '../src/engine/safetensors';
import pythonReads from './fixtures/python-reads-webtune.json';
import reference from './fixtures/stories260K-reference.json';
import { sampleMetadata, sampleTensors } from './fixtures/samples';
import { modelDir } from './helpers/paths';

const STORIES = path.join(modelDir('stories260K'), 'model.safetensors');

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** Builds a file by hand: any header text, any declared length, any number of data bytes. */
function rawFile(
  header: Uint8Array | string | object,
  dataBytes: Uint8Array | number = 0,
  declaredLength?: number,
): Uint8Array {
  const json =
    header instanceof Uint8Array
      ? header
      : new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const data = typeof dataBytes === 'number' ? new Uint8Array(dataBytes) : dataBytes;
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(declaredLength ?? json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

/** One tensor stored as raw 16-bit patterns (F16 or BF16). */
function halfFile(dtype: 'F16' | 'BF16', patterns: number[]): Uint8Array {
  const data = new Uint8Array(new Uint16Array(patterns).buffer);
  return rawFile({ t: { dtype, shape: [patterns.length], data_offsets: [0, data.length] } }, data);
}

describe('reading model.safetensors', () => {
  const bytes = new Uint8Array(fs.readFileSync(STORIES));

  test('stories260K reads as the PyTorch reference reads it', () => {
    const { metadata, tensors } = readSafetensors(bytes);
    expect(metadata).toEqual({ format: 'pt' });
    expect(Object.fromEntries([...tensors].map(([name, t]) => [name, t.shape]))).toEqual(reference.shapes);
    for (const [name, expected] of Object.entries(reference.samples)) {
      const { data, dtype } = tensors.get(name)!;
      expect(dtype).toBe('F32');
      expect(expected.indices.map((i) => data[i])).toEqual(expected.values);
      const sum = data.reduce((a, v) => a + v, 0);
      const sumOfSquares = data.reduce((a, v) => a + v * v, 0);
      expect(Math.abs(sum - expected.sum)).toBeLessThan(1e-9 * Math.max(1, Math.abs(expected.sum)));
      expect(Math.abs(sumOfSquares - expected.sumOfSquares)).toBeLessThan(1e-9 * expected.sumOfSquares);
    }
  });

  test('the header parses from a prefix, and tensors convert from a slice at any alignment', () => {
    const headerLength = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
    const header = parseSafetensorsHeader(bytes.slice(0, 8 + headerLength), bytes.length);
    expect(header.headerLength).toBe(headerLength);
    expect(header.dataStart).toBe(8 + headerLength);
    const entry = header.tensors.find((t) => t.name === 'model.layers.4.mlp.down_proj.weight')!;
    const expected = reference.samples['model.layers.4.mlp.down_proj.weight'];

    const shifted = new Uint8Array(entry.end - entry.begin + 3).subarray(1);
    shifted.set(bytes.subarray(entry.begin, entry.end)); // starts at an odd address
    const data = tensorToFloat32(shifted, entry, entry.begin);
    expect(expected.indices.map((i) => data[i])).toEqual(expected.values);
    expect(() => tensorToFloat32(shifted, entry, entry.begin + 4)).toThrow(/not inside/);
  });
});

describe('float16 and bfloat16', () => {
  test('F16 bit patterns give the IEEE half values', () => {
    const cases: [number, number][] = [
      [0x3c00, 1],
      [0xc000, -2],
      [0x7bff, 65504],
      [0xfbff, -65504],
      [0x3555, 0.333251953125],
      [0x0001, 2 ** -24],
      [0x03ff, 1023 * 2 ** -24],
      [0x0400, 2 ** -14],
      [0x8001, -(2 ** -24)],
      [0x7c00, Infinity],
      [0xfc00, -Infinity],
      [0x0000, 0],
    ];
    const { tensors } = readSafetensors(
      halfFile('F16', [...cases.map(([bits]) => bits), 0x7e00, 0x7c01, 0x8000]),
    );
    const data = tensors.get('t')!.data;
    cases.forEach(([bits, value], i) => expect(data[i], `0x${bits.toString(16)}`).toBe(value));
    expect(data[cases.length]).toBeNaN();
    expect(data[cases.length + 1]).toBeNaN(); // signalling-NaN pattern stays NaN, not Infinity
    expect(Object.is(data[cases.length + 2], -0)).toBe(true);
  });

  test('all 65,536 F16 patterns convert exactly as numpy converts them', () => {
    const { tensors } = readSafetensors(
      halfFile(
        'F16',
        Array.from({ length: 65536 }, (_, i) => i),
      ),
    );
    const data = tensors.get('t')!.data;
    expect(sha256(new Uint8Array(data.buffer))).toBe(reference.float16ToFloat32Sha256);
  });

  test('BF16 is the upper half of a float32', () => {
    const cases: [number, number][] = [
      [0x3f80, 1],
      [0xc000, -2],
      [0x4049, 3.140625],
      [0x7f7f, 3.3895313892515355e38],
      [0x0001, 2 ** -133],
      [0x7f80, Infinity],
      [0xff80, -Infinity],
    ];
    const { tensors } = readSafetensors(halfFile('BF16', [...cases.map(([bits]) => bits), 0x7fc0, 0x8000]));
    const data = tensors.get('t')!.data;
    cases.forEach(([bits, value], i) => expect(data[i], `0x${bits.toString(16)}`).toBe(value));
    expect(data[cases.length]).toBeNaN();
    expect(Object.is(data[cases.length + 1], -0)).toBe(true);
  });
});

describe('malformed files are rejected with a message that names the problem', () => {
  const tensor = (dtype: string, shape: unknown, offsets: unknown) => ({
    dtype,
    shape,
    data_offsets: offsets,
  });
  const good = rawFile({ a: tensor('F32', [2, 2], [0, 16]) }, 16);
  const cases: [string, Uint8Array, RegExp][] = [
    ['shorter than 8 bytes', new Uint8Array(5), /not a safetensors file: it has only 5 bytes/],
    [
      'truncated data',
      good.subarray(0, good.length - 4),
      /truncated: tensor 'a' ends at byte \d+ but the file has \d+ bytes/,
    ],
    [
      'header longer than the file',
      rawFile({}, 0, 1000),
      /truncated: its header needs 1008 bytes but the file has 10 bytes/,
    ],
    [
      'absurd header length 2^40',
      rawFile({}, 0, 2 ** 40),
      /header claims 1099511627776 bytes, more than the 100 MB/,
    ],
    ['header length 0', rawFile('', 0, 0), /header length is 0 bytes/],
    ['not JSON', rawFile('{not json}'), /header that is not valid UTF-8 JSON/],
    ['not UTF-8', rawFile(new Uint8Array([0x7b, 0xff, 0x7d])), /not valid UTF-8 JSON/],
    ['not an object', rawFile('[1, 2]'), /does not start with "\{"/],
    [
      'overlapping tensors',
      rawFile({ a: tensor('F32', [4], [0, 16]), b: tensor('F32', [2], [8, 16]) }, 16),
      /tensors 'a' and 'b' overlap/,
    ],
    ['unknown dtype', rawFile({ w: tensor('Q4_K', [4], [0, 2]) }, 2), /tensor 'w' with unknown dtype 'Q4_K'/],
    [
      'known but unsupported dtype',
      rawFile({ w: tensor('I64', [2], [0, 16]) }, 16),
      /tensor 'w' as I64, which webtune cannot read/,
    ],
    ['8-bit float', rawFile({ w: tensor('F8_E4M3', [2], [0, 2]) }, 2), /as F8_E4M3.*not a quantized one/],
    [
      'shape and byte count disagree',
      rawFile({ w: tensor('F32', [2, 2], [0, 12]) }, 12),
      /'w' \(F32, shape \[2, 2\]\) needs 16 bytes but its data_offsets span 12/,
    ],
    [
      'offsets outside the file',
      rawFile({ w: tensor('F32', [4], [16, 32]) }, 16),
      /tensor 'w' ends at byte \d+ but the file has \d+ bytes/,
    ],
    [
      'reversed offsets',
      rawFile({ w: tensor('F32', [0], [8, 4]) }, 8),
      /invalid data_offsets for tensor 'w'/,
    ],
    ['negative offset', rawFile({ w: tensor('F32', [1], [-4, 0]) }, 8), /invalid data_offsets/],
    [
      'negative dimension',
      rawFile({ w: tensor('F32', [-1], [0, 4]) }, 4),
      /invalid shape for tensor 'w': \[-1\]/,
    ],
    ['fractional dimension', rawFile({ w: tensor('F32', [1.5], [0, 4]) }, 4), /invalid shape/],
    ['missing dtype', rawFile({ w: { shape: [1], data_offsets: [0, 4] } }, 4), /no dtype for tensor 'w'/],
    ['metadata that is not strings', rawFile({ __metadata__: { step: 3 } }), /invalid __metadata__/],
    // A lying header must fail on the numbers, before anything is allocated for them.
    [
      'a 40 GB tensor in a tiny file',
      rawFile({ w: tensor('F32', [100000, 100000], [0, 4e10]) }, 8),
      /ends at byte 40000000\d+ but the file has/,
    ],
  ];
  test.each(cases)('%s', (_, bytes, message) => {
    let thrown: unknown;
    try {
      readSafetensors(bytes, 'weights.safetensors');
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(SafetensorsError);
    expect((thrown as Error).message).toMatch(message);
    expect((thrown as Error).message).toMatch(/^weights\.safetensors /);
  });

  test('a prefix shorter than the header asks for more bytes instead of misreading', () => {
    expect(() => parseSafetensorsHeader(good.subarray(0, 12), good.length)).toThrow(
      /needs the first \d+ bytes but only 12 were read/,
    );
    expect(() => parseSafetensorsHeader(good.subarray(0, 4), good.length)).toThrow(
      /only 4 of its first 8 bytes/,
    );
  });
});

describe('writing', () => {
  test('round trip keeps names, order, shapes, metadata and every bit', () => {
    const bytes = writeSafetensors(sampleTensors(), sampleMetadata);
    const { metadata, tensors } = readSafetensors(bytes);
    expect(metadata).toEqual(sampleMetadata);
    expect([...tensors.keys()]).toEqual(sampleTensors().map(([name]) => name));
    for (const [name, { shape, data }] of sampleTensors()) {
      expect(tensors.get(name)!.shape).toEqual(shape);
      expect(new Uint8Array(tensors.get(name)!.data.buffer)).toEqual(new Uint8Array(data.buffer));
    }
  });

  test('layout: header padded with spaces to 8 bytes, data back to back in the given order', () => {
    const bytes = writeSafetensors(
      new Map([
        ['b', { shape: [3], data: new Float32Array(3) }],
        ['a', { shape: [1], data: new Float32Array(1) }],
      ]),
    );
    const header = parseSafetensorsHeader(bytes, bytes.length);
    expect(header.headerLength % 8).toBe(0);
    const text = new TextDecoder().decode(bytes.subarray(8, header.dataStart));
    expect(text).toMatch(
      /^\{"b":\{"dtype":"F32","shape":\[3\],"data_offsets":\[0,12\]\},"a":\{"dtype":"F32","shape":\[1\],"data_offsets":\[12,16\]\}\} *$/,
    );
    expect(bytes.length).toBe(header.dataStart + 16);
  });

  test('the PyTorch reference reads what webtune writes (recorded in tests/fixtures)', () => {
    const bytes = writeSafetensors(sampleTensors(), sampleMetadata);
    // The reference read exactly these bytes; if the hash changes, regenerate the fixture (README.md).
    expect(sha256(bytes)).toBe(pythonReads.safetensorsSha256);
    for (const [name, { shape, data }] of sampleTensors()) {
      const read = pythonReads.tensors[name as keyof typeof pythonReads.tensors];
      expect(read.shape).toEqual(shape);
      expect(read.values).toEqual([...data]);
    }
  });

  test('a tensor whose data does not fill its shape is refused', () => {
    expect(() => writeSafetensors([['w', { shape: [2, 3], data: new Float32Array(5) }]])).toThrow(
      /shape \[2, 3\] needs 6 values but 5 were given/,
    );
  });
});
