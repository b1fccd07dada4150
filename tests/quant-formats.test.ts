/**
 * The frozen-weight formats of src/engine/quant.ts against references that share none of its code:
 * reference/quant_reference.py (numpy, written from llama.cpp's quantize_row_q8_0_ref, bitsandbytes'
 * dQuantizeNF4 tree and levels, PyTorch's bf16 rounding and numpy's f16), and llama.cpp itself
 * (reference/quant_llamacpp.py runs ggml_quantize_chunk from node-llama-cpp's libggml-base). Packed arrays
 * must be equal bit for bit, decoded values equal as float32 (-0 and +0 told apart; NaN equals NaN).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  bytesPerWeight,
  concatRows,
  dequantizeRows,
  pack,
  packedBytes,
  type PackedMatrix,
  type WeightFormat,
} from '../src/engine/quant';
import { tempDir } from './helpers/gguf-files';

type Format = Exclude<WeightFormat, 'f32'>;
interface Case {
  name: string;
  rows: number;
  cols: number;
  values: Float32Array;
  formats: Format[];
}

const ROOT = path.resolve(__dirname, '..');
const PYTHON = '/usr/bin/python3'; // the interpreter `npm run setup` provides (numpy comes with python3-torch)
const ALL: Format[] = ['q8_0', 'nf4', 'bf16', 'f16'];
const LLAMA_BINS = path.join(ROOT, 'tools', 'llama', 'node_modules', '@node-llama-cpp');

// ---- inputs: seeded random matrices of several shapes and scales, and hand-made edge cases ----------

function rng(seed: number) {
  let s = seed >>> 0;
  const uniform = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  const normal = () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
  return { uniform, normal };
}

type Rng = ReturnType<typeof rng>;
function random(
  name: string,
  rows: number,
  cols: number,
  seed: number,
  draw: (g: Rng, r: number) => number,
): Case {
  const g = rng(seed);
  const values = new Float32Array(rows * cols);
  for (let i = 0; i < values.length; i++) values[i] = draw(g, Math.floor(i / cols));
  // Negative zeros among the values.
  for (let i = seed % 7; i < values.length; i += 37) values[i] = -0;
  return { name, rows, cols, values, formats: ALL };
}

/** A row of blocks, each filled from its own list of values (the rest of the block zero). */
function blockRows(name: string, block: number, rows: number[][][], formats: Format[]): Case {
  const cols = Math.max(...rows.map((r) => r.length)) * block;
  const values = new Float32Array(rows.length * cols);
  rows.forEach((blocks, r) => blocks.forEach((vs, b) => values.set(vs, r * cols + b * block)));
  return { name, rows: rows.length, cols, values, formats };
}

const f32 = Math.fround;
const bitsOf = (x: number) => new Uint32Array(Float32Array.of(x).buffer)[0];
const fromBits = (b: number) => new Float32Array(Uint32Array.of(b).buffer)[0];
const nextUp = (x: number) => fromBits(x > 0 ? bitsOf(x) + 1 : x < 0 ? bitsOf(x) - 1 : 1);
const nextDown = (x: number) => -nextUp(-x);
/** A block whose largest magnitude is `amax`, with `amax` times a few fractions and zeros. */
const spread = (amax: number, n: number) =>
  [amax, -amax, 0, -0].concat(Array.from({ length: n - 4 }, (_, i) => f32(amax * Math.sin(i * 1.7))));

// dQuantizeNF4's thresholds as bitsandbytes' kernel spells them (kernels.cu), as float32.
const NF4_THRESHOLDS = [
  -0.8480964004993439, -0.6106329262256622, -0.4599952697753906, -0.33967943489551544, -0.23460740596055984,
  -0.13791173323988914, -0.045525018125772476, 0.03979014977812767, 0.1202552504837513, 0.2035212516784668,
  0.2920137718319893, 0.3893125355243683, 0.5016634166240692, 0.6427869200706482, 0.8614784181118011,
].map(f32);
const onThresholds = (absmax: number) =>
  [absmax].concat(
    NF4_THRESHOLDS.flatMap((t) => [t, nextUp(t), nextDown(t)].map((x) => f32(x * absmax))),
    [-absmax],
  );

// 1.27 is id for amax 100 (d = 100/127): values whose x·id lands at or next to k + 0.5.
const nearTies = [0.5, 1.5, 2.5, 63.5, 126.5].flatMap((k) => {
  const x = f32(k / f32(1.27));
  return [x, nextUp(x), nextDown(x), -x];
});

const CASES: Case[] = [
  random('r3x100', 3, 100, 1, (g) => 0.02 * g.normal()),
  random('r5x64', 5, 64, 2, (g) => 2 * g.uniform() - 1),
  random('r2x31', 2, 31, 3, (g) => 300 * g.normal()),
  // Rows from 1e-6 to 10: the small ones put the q8_0 scale among the f16 subnormals.
  random('r7x172', 7, 172, 4, (g, r) => 10 ** (r - 6) * g.normal()),
  random('r1x1', 1, 1, 5, () => -0.7),
  // Heavy tails: occasional outliers dominate their blocks.
  random('r16x320', 16, 320, 6, (g) => g.normal() * Math.exp(2 * g.normal())),
  random('r2x4096', 2, 4096, 7, (g) => 0.05 * g.normal()),
  {
    name: 'zeros',
    rows: 3,
    cols: 96,
    values: Float32Array.from({ length: 288 }, (_, i) => (i < 96 ? 0 : i < 192 ? (i % 2 ? -0 : 0) : -0)),
    formats: ALL,
  },
  blockRows(
    'outliers',
    32,
    [
      [[1e4, ...spread(1e-3, 31)], spread(1e-3, 32), [...spread(0.5, 20), -7e3]],
      [spread(1, 32), [...spread(2e-4, 30), 3.5e5]],
    ],
    ALL,
  ),
  blockRows(
    'q8-ties',
    32,
    [
      [
        [127, -127, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 3.5, 126.5, -126.5, 64.5, 0.49999997, -0.49999997],
        [63.5, 0.25, -0.25, 0.75, -0.75, 1.25, 31.75, -63.25, nextUp(0.25), nextDown(0.25)],
        [508, 2, -2, 6, -6, 10, 254, -250, nextDown(2), nextUp(-2)],
        [100, ...nearTies],
      ],
    ],
    ALL,
  ),
  // q8_0 scales around f16's subnormals and limits: d = 1.5·2^-24 (a tie, to 2^-23), 2^-24 (the smallest
  // subnormal), 2^-25 (a tie, to 0), just past it, below it (d stored as 0 while q is not), 2^-14 and just
  // under it (the normal boundary), 65504 (the largest half) and past it (d is inf), and an amax whose
  // 1/d overflows float32 (C leaves that conversion to int8 undefined; llama.cpp stores 0).
  blockRows(
    'q8-scales',
    32,
    [
      [
        spread(f32(190.5 * 2 ** -24), 32),
        spread(f32(127 * 2 ** -24), 32),
        spread(f32(127 * 2 ** -25), 32),
        spread(f32(127 * 2 ** -25 * 1.001), 32),
        spread(1e-6, 32),
        spread(f32(127 * 2 ** -14), 32),
        spread(f32(127 * (2 ** -14 - 2 ** -25)), 32),
        spread(f32(127 * 65504), 32),
        spread(f32(127 * 65520), 32),
        spread(1e-37, 32),
      ],
    ],
    ['q8_0', 'nf4'],
  ),
  // Normalized values exactly on NF4's midpoints and one float32 step either side, with absmax 1, 2, 1/2
  // (exact scaling) and 3, 0.7 (rounded scaling), and a block led by a negative absmax.
  blockRows(
    'nf4-midpoints',
    64,
    [
      [onThresholds(1), onThresholds(2)],
      [onThresholds(0.5), onThresholds(3)],
      [onThresholds(f32(0.7)), onThresholds(1).map((x) => -x)],
    ],
    ['nf4', 'q8_0'],
  ),
  // NF4 blocks with a subnormal absmax: 1/absmax finite (5e-39) or overflowing to inf (1e-39), and a short
  // last block (cols 138) so padding is quantized in such a block.
  (() => {
    const c = blockRows('nf4-tiny', 64, [[spread(1e-30, 64), spread(5e-39, 64), spread(1e-39, 10)]], ['nf4']);
    return { ...c, cols: 138, values: c.values.slice(0, 138) };
  })(),
  // 16-bit rounding: ties to even, the f16 and bf16 limits, subnormals, infinities, random bit patterns.
  (() => {
    const edges = [0, -0, Infinity, -Infinity, 3.4028234663852886e38, -3.4028234663852886e38];
    edges.push(65504, 65519.99609375, 65520, -65520, 2 ** -24, 2 ** -25, 3 * 2 ** -26, f32(2 ** -25 * 1.001));
    edges.push(
      1 + 2 ** -8,
      1 + 3 * 2 ** -8,
      1 + 2 ** -11,
      1 + 3 * 2 ** -11,
      1e-45,
      1e-40,
      3.3895313892515355e38,
    );
    edges.push(fromBits(0x7f7f8000), fromBits(0x7f7f7fff), fromBits(0x00008000), fromBits(0x00018000));
    const values = new Float32Array(5 * 37);
    values.set(edges);
    const h = rng(8);
    for (let i = edges.length; i < values.length; i++) {
      let v: number;
      do v = fromBits(Math.floor(h.uniform() * 2 ** 32));
      while (!Number.isFinite(v));
      values[i] = v;
    }
    return { name: 'halves', rows: 5, cols: 37, values, formats: ['bf16', 'f16'] satisfies Format[] };
  })(),
];

// ---- running the references ------------------------------------------------------------------------------

const dir = tempDir('webtune-quant-');
const python = (args: string[]) =>
  execFileSync(PYTHON, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

function writeInputs(): void {
  const list = CASES.map(({ name, rows, cols, formats }) => ({ name, rows, cols, formats }));
  fs.writeFileSync(path.join(dir, 'cases.json'), JSON.stringify(list));
  for (const c of CASES) fs.writeFileSync(path.join(dir, `${c.name}.f32`), new Uint8Array(c.values.buffer));
}

/** A reference output's bytes (copied, so typed views of it are aligned). */
const bytes = (file: string) => new Uint8Array(fs.readFileSync(path.join(dir, file)));

/** Arrays of a packed matrix by the reference's file suffixes. */
function arrays(m: PackedMatrix): Record<string, ArrayBufferView> {
  if (m.format === 'q8_0') return { 'scales.u16': m.scales, 'quants.i8': m.quants };
  if (m.format === 'nf4') return { 'absmax.f32': m.absmax, 'codes.u8': m.codes };
  return { 'bits.u16': m.bits };
}

const view = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** Where two byte arrays differ (up to 4 places), for a readable failure. */
function byteDiffs(actual: ArrayBufferView, expected: Uint8Array): string[] {
  const a = view(actual);
  if (a.length !== expected.length) return [`length ${a.length}, expected ${expected.length}`];
  const out: string[] = [];
  for (let i = 0; i < a.length && out.length < 4; i++)
    if (a[i] !== expected[i]) out.push(`byte ${i}: ${a[i]}, expected ${expected[i]}`);
  return out;
}

/** Where two float32 arrays differ as values (bits compared, every NaN equal), up to 4 places. */
function valueDiffs(actual: Float32Array, expectedBytes: Uint8Array): string[] {
  const expected = new Float32Array(expectedBytes.buffer, expectedBytes.byteOffset, expectedBytes.length / 4);
  if (actual.length !== expected.length) return [`length ${actual.length}, expected ${expected.length}`];
  const out: string[] = [];
  for (let i = 0; i < actual.length && out.length < 4; i++) {
    const [a, e] = [actual[i], expected[i]];
    if (!(Number.isNaN(a) && Number.isNaN(e)) && !Object.is(a, e)) out.push(`[${i}] ${a}, expected ${e}`);
  }
  return out;
}

beforeAll(() => {
  writeInputs();
  python([path.join(ROOT, 'reference', 'quant_reference.py'), dir]);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

// ---- the comparisons ---------------------------------------------------------------------------------

describe.each(CASES)('$name [$rows, $cols] against the numpy reference', (c) => {
  it.each(c.formats)('%s: packed arrays bit for bit, decoded values exactly', (format) => {
    const m = pack(c.values, c.rows, c.cols, format);
    for (const [suffix, array] of Object.entries(arrays(m)))
      expect(byteDiffs(array, bytes(`${c.name}.${format}.${suffix}`)), suffix).toEqual([]);
    expect(valueDiffs(dequantizeRows(m), bytes(`${c.name}.${format}.values.f32`))).toEqual([]);
    const refBytes = Object.keys(arrays(m)).reduce((n, s) => n + bytes(`${c.name}.${format}.${s}`).length, 0);
    expect(packedBytes(m)).toBe(refBytes);
  });

  it.each(c.formats)('%s: row ranges, into a reused buffer', (format) => {
    const m = pack(c.values, c.rows, c.cols, format);
    const all = bytes(`${c.name}.${format}.values.f32`);
    const rowBytes = c.cols * 4;
    const ranges = [
      [0, c.rows],
      [c.rows - 1, 1],
      [Math.floor(c.rows / 2), Math.ceil(c.rows / 2)],
      [0, 0],
    ];
    // A buffer with room to spare, at a byte offset of 4 (the bf16 path views it as u32s).
    const backing = new Float32Array(c.rows * c.cols + 3).fill(7.25);
    const out = backing.subarray(1, c.rows * c.cols + 2);
    for (const [start, count] of ranges) {
      const expected = all.slice(start * rowBytes, (start + count) * rowBytes);
      expect(valueDiffs(dequantizeRows(m, start, count), expected), `rows ${start}+${count}`).toEqual([]);
      expect(dequantizeRows(m, start, count, out)).toBe(out);
      expect(valueDiffs(out.subarray(0, count * c.cols), expected), `rows ${start}+${count}`).toEqual([]);
    }
    // Nothing written outside rows · cols values from the start of `out`.
    const untouched = [backing[0], backing[backing.length - 2], backing[backing.length - 1]];
    expect(untouched).toEqual([7.25, 7.25, 7.25]);
    expect(() => dequantizeRows(m, 0, c.rows, new Float32Array(c.rows * c.cols - 1))).toThrow(RangeError);
    expect(() => dequantizeRows(m, 1, c.rows)).toThrow(RangeError);
  });
});

describe('sizes', () => {
  it('packedBytes counts whole blocks: 34 bytes per 32 weights (q8_0), 36 per 64 (nf4), 2 per half', () => {
    for (const c of CASES) {
      const expected = {
        q8_0: c.rows * Math.ceil(c.cols / 32) * 34,
        nf4: c.rows * Math.ceil(c.cols / 64) * 36,
        bf16: c.rows * c.cols * 2,
        f16: c.rows * c.cols * 2,
      };
      for (const f of c.formats)
        expect(packedBytes(pack(c.values, c.rows, c.cols, f)), c.name).toBe(expected[f]);
    }
  });

  it('bytesPerWeight: q8_0 8.5 bits, nf4 4.5 bits on whole blocks; padding counted on short rows', () => {
    expect(bytesPerWeight('q8_0', 4096) * 8).toBe(8.5);
    expect(bytesPerWeight('nf4', 4096) * 8).toBe(4.5);
    expect(bytesPerWeight('q8_0', 100)).toBeCloseTo((4 * 34) / 100, 12);
    expect(bytesPerWeight('nf4', 100)).toBeCloseTo((2 * 36) / 100, 12);
    expect(bytesPerWeight('nf4', 1)).toBe(36);
    expect([bytesPerWeight('f32', 7), bytesPerWeight('bf16', 7), bytesPerWeight('f16', 7)]).toEqual([
      4, 2, 2,
    ]);
  });
});

describe('concatRows', () => {
  const c = CASES.find((x) => x.name === 'r16x320')!;
  const part = (start: number, end: number) => c.values.subarray(start * c.cols, end * c.cols);
  it.each(ALL)('%s: quantized row groups joined equal the joined matrix quantized', (format) => {
    const parts = [
      [0, 5],
      [5, 6],
      [6, 16],
    ].map(([s, e]) => pack(part(s, e), e - s, c.cols, format));
    const joined = concatRows(parts);
    const whole = pack(c.values, c.rows, c.cols, format);
    expect([joined.format, joined.rows, joined.cols]).toEqual([format, 16, c.cols]);
    for (const [suffix, array] of Object.entries(arrays(whole)))
      expect(byteDiffs(arrays(joined)[suffix], view(array)), suffix).toEqual([]);
    expect(Array.from(dequantizeRows(joined, 5, 2))).toEqual(Array.from(dequantizeRows(whole, 5, 2)));
  });
  it('refuses parts of different formats or widths', () => {
    const a = pack(part(0, 2), 2, c.cols, 'q8_0');
    expect(() => concatRows([a, pack(part(0, 2), 2, c.cols, 'nf4')])).toThrow(RangeError);
    expect(() => concatRows([a, pack(c.values.subarray(0, 64), 1, 64, 'q8_0')])).toThrow(RangeError);
  });
});

// ---- llama.cpp itself ------------------------------------------------------------------------------------

/** node-llama-cpp's libggml-base for this platform (installed by `npm run setup:llama`). */
function ggmlLibrary(): string {
  const platform = `${process.platform}-${process.arch}`;
  const file = process.platform === 'darwin' ? 'libggml-base.dylib' : 'libggml-base.so';
  const lib = path.join(LLAMA_BINS, platform, 'bins', platform, file);
  if (!fs.existsSync(lib))
    throw new Error(`No ${lib}: run \`npm run setup:llama\` (npm run test:unit does it first).`);
  return lib;
}

describe('q8_0 and f16 against llama.cpp (ggml_quantize_chunk, dequantize_row_q8_0, ggml_fp32_to_fp16_row)', () => {
  let geometry: { type_name: string; type_size: number; block_size: number };
  beforeAll(() => {
    geometry = JSON.parse(python([path.join(ROOT, 'reference', 'quant_llamacpp.py'), ggmlLibrary(), dir]));
  });

  it("llama.cpp's q8_0 block is 34 bytes for 32 weights, as bytesPerWeight says", () => {
    expect(geometry).toEqual({ type_name: 'q8_0', type_size: 34, block_size: 32 });
    expect(bytesPerWeight('q8_0', 4096)).toBe(geometry.type_size / geometry.block_size);
  });

  it.each(CASES.filter((c) => c.formats.includes('q8_0')))('q8_0 of $name [$rows, $cols]', (c) => {
    const m = pack(c.values, c.rows, c.cols, 'q8_0');
    for (const [suffix, array] of Object.entries(arrays(m)))
      expect(byteDiffs(array, bytes(`${c.name}.ggml-q8_0.${suffix}`)), suffix).toEqual([]);
    expect(valueDiffs(dequantizeRows(m), bytes(`${c.name}.ggml-q8_0.values.f32`))).toEqual([]);
  });

  it.each(CASES.filter((c) => c.formats.includes('f16')))('f16 of $name [$rows, $cols]', (c) => {
    const m = pack(c.values, c.rows, c.cols, 'f16');
    expect(byteDiffs(arrays(m)['bits.u16'], bytes(`${c.name}.ggml-f16.bits.u16`))).toEqual([]);
  });
});
