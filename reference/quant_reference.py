#!/usr/bin/env python3
"""Reference implementations of the storage formats of webtune's frozen weights (src/engine/quant.ts),
written from the published definitions with numpy alone, so that the TypeScript can be checked against
something that does not share its code.

A matrix W is [rows, cols] (PyTorch's [out, in]); blocks run along each row. A row whose length is not a
multiple of the block size is padded with zeros to whole blocks and the padded row is quantized as it is
(llama.cpp requires whole blocks; bitsandbytes pads its last block with zeros the same way).

q8_0  llama.cpp, ggml/src/ggml-quants.c, quantize_row_q8_0_ref and dequantize_row_q8_0. Per block of 32:
        amax = max |x|;  d = amax / 127 (float32);  id = d ? 1/d : 0 (float32)
        qs[j] = roundf(x[j] * id)  (float32 product; C's roundf: halves away from zero), stored as int8
        d is stored as f16 (GGML_FP32_TO_FP16: round to nearest even); y[j] = qs[j] * f16(d) (float32).
      Only when 1/d overflows float32 (amax below ~3.7e-37) is x * id not finite; C leaves the conversion
      of +-inf or NaN to int8 undefined, and llama.cpp's x86 build stores 0 (the f16 d is 0 there anyway),
      so this does too.
nf4   bitsandbytes, csrc/kernels.cu, kQuantizeBlockwise with dQuantizeNF4, and dequantization by
      nf4_dequantization_lut (the levels of functional.py's get_4bit_type('nf4')). Per block of 64:
        absmax = max |x| (float32);  scale = 1 / absmax (float32);  code[j] = dQuantizeNF4(x[j] * scale)
      dQuantizeNF4 is the kernel's comparison tree, `x > t` against its literal float32 thresholds, so a
      value equal to a threshold takes the lower code and NaN (every comparison false) takes code 0.
      Two codes to a byte, the first value in the high nibble; y[j] = level[code[j]] * absmax (float32).
      A block whose absmax is 0 is where bitsandbytes' implementations part: the CUDA kernel's 0 * (1/0)
      is NaN, code 0, which decodes to -0.0; its torch backend clamps absmax to 1e-38 first, so every value
      is code 7 (the level 0) and decodes to 0.0. This follows the torch backend (scale 0, as q8_0's id).
bf16  PyTorch's float32 -> bfloat16 (c10 round_to_nearest_even): the nearer of the two bfloat16 values
      around x, the one with an even last bit on a tie; NaN becomes 0x7fc0. Widening is exact.
f16   numpy's astype(float16) (IEEE binary16, round to nearest even, subnormals, overflow to inf).

Usage: quant_reference.py DIR
  DIR/cases.json is a list of {"name", "rows", "cols", "formats"} (formats: any of q8_0, nf4, bf16, f16);
  DIR/<name>.f32 holds rows * cols little-endian float32 values, row-major. For each case and format it
  writes little-endian arrays, padded to whole blocks as described:
    <name>.q8_0.scales.u16 [rows, blocks]   <name>.q8_0.quants.i8 [rows, blocks * 32]
    <name>.nf4.absmax.f32 [rows, blocks]    <name>.nf4.codes.u8 [rows, blocks * 32]
    <name>.bf16.bits.u16 / <name>.f16.bits.u16 [rows, cols]
  and <name>.<format>.values.f32, the dequantized [rows, cols] (the padding dropped).
"""
import json
import os
import sys

import numpy as np

F32 = np.float32
Q8_0_BLOCK = 32
NF4_BLOCK = 64


def padded_rows(w, block):
    """w [rows, cols] with zero columns appended up to a whole number of blocks."""
    rows, cols = w.shape
    width = -(-cols // block) * block
    out = np.zeros((rows, width), dtype=F32)
    out[:, :cols] = w
    return out


def roundf(x):
    """C's roundf on float32 values: the nearest integer, halves away from zero."""
    whole = np.trunc(x)
    frac = x - whole  # exact: x and its integer part share an exponent range
    return whole + np.where(np.abs(frac) >= F32(0.5), np.sign(x), F32(0))


def q8_0(w):
    rows, cols = w.shape
    blocks = padded_rows(w, Q8_0_BLOCK).reshape(-1, Q8_0_BLOCK)
    amax = np.max(np.abs(blocks), axis=1)
    d = amax / F32(127)
    nonzero = d != 0
    inv = np.zeros_like(d)
    with np.errstate(over="ignore"):
        np.divide(F32(1), d, out=inv, where=nonzero)
    with np.errstate(invalid="ignore", over="ignore"):
        x0 = blocks * inv[:, None]
        finite = np.isfinite(x0)
        qs = np.where(finite, roundf(np.where(finite, x0, F32(0))), F32(0)).astype(np.int8)
    with np.errstate(over="ignore"):
        d16 = d.astype(np.float16)  # amax above 127 * 65504 gives an infinite d, as llama.cpp's does
    with np.errstate(invalid="ignore"):
        values = qs.astype(F32) * d16.astype(F32)[:, None]
    return {
        "scales.u16": d16.view(np.uint16).reshape(rows, -1),
        "quants.i8": qs.reshape(rows, -1),
        "values.f32": values.reshape(rows, -1)[:, :cols],
    }


# functional.py, get_4bit_type('nf4'): codes 0..15.
NF4_LEVELS = np.array(
    [
        -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
        -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
        0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
        0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
    ],
    dtype=F32,
)


def dquantize_nf4(x):
    """kernels.cu's dQuantizeNF4 for one float32 value, its thresholds as float32 literals (the `f`)."""
    if x > F32(0.03979014977812767):
        if x > F32(0.3893125355243683):
            if x > F32(0.6427869200706482):
                return 0b1111 if x > F32(0.8614784181118011) else 0b1110
            return 0b1101 if x > F32(0.5016634166240692) else 0b1100
        if x > F32(0.2035212516784668):
            return 0b1011 if x > F32(0.2920137718319893) else 0b1010
        return 0b1001 if x > F32(0.1202552504837513) else 0b1000
    if x > F32(-0.33967943489551544):
        if x > F32(-0.13791173323988914):
            return 0b0111 if x > F32(-0.045525018125772476) else 0b0110
        return 0b0101 if x > F32(-0.23460740596055984) else 0b0100
    if x > F32(-0.6106329262256622):
        return 0b0011 if x > F32(-0.4599952697753906) else 0b0010
    return 0b0001 if x > F32(-0.8480964004993439) else 0b0000


def nf4(w):
    rows, cols = w.shape
    blocks = padded_rows(w, NF4_BLOCK).reshape(-1, NF4_BLOCK)
    absmax = np.max(np.abs(blocks), axis=1)
    codes = np.zeros(blocks.shape, dtype=np.uint8)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        for b in range(blocks.shape[0]):
            scale = F32(1) / absmax[b] if absmax[b] != 0 else F32(0)
            for j in range(NF4_BLOCK):
                codes[b, j] = dquantize_nf4(F32(blocks[b, j] * scale))
    packed = (codes[:, 0::2] << 4) | codes[:, 1::2]
    values = NF4_LEVELS[codes] * absmax[:, None]
    return {
        "absmax.f32": absmax.reshape(rows, -1),
        "codes.u8": packed.reshape(rows, -1),
        "values.f32": values.reshape(rows, -1)[:, :cols],
    }


def bf16_value(bits):
    """The value of bfloat16 bit patterns (uint32 array) as float64, an all-ones exponent read as 2^128 so
    that the step past the largest finite value is a number (rounding there gives inf, as IEEE says)."""
    sign = np.where(bits & 0x8000, -1.0, 1.0)
    exponent = ((bits >> 7) & 0xFF).astype(np.int64)
    mantissa = (bits & 0x7F).astype(np.float64)
    normal = np.ldexp(1.0 + mantissa / 128.0, exponent - 127)
    subnormal = np.ldexp(mantissa / 128.0, -126)
    return sign * np.where(exponent == 0, subnormal, normal)


def bf16(w):
    flat = w.reshape(-1)
    u = flat.view(np.uint32).astype(np.int64)
    low = u >> 16  # x with its low 16 bits cut: the bfloat16 next to x toward zero
    high = low + 1  # the next one away from zero (same sign)
    x = flat.astype(np.float64)
    with np.errstate(invalid="ignore"):
        below = np.abs(x - bf16_value(low))
        above = np.abs(bf16_value(high) - x)
    pick_high = (above < below) | ((above == below) & ((low & 1) == 1))
    bits = np.where(pick_high, high, low)
    bits = np.where(np.isinf(flat), low, bits)  # inf is exact (its low bits are 0)
    bits = np.where(np.isnan(flat), 0x7FC0, bits).astype(np.uint16)
    values = (bits.astype(np.uint32) << 16).view(F32)
    return {"bits.u16": bits.reshape(w.shape), "values.f32": values.reshape(w.shape)}


def f16(w):
    with np.errstate(over="ignore"):
        h = w.astype(np.float16)
    return {"bits.u16": h.view(np.uint16), "values.f32": h.astype(F32)}


FORMATS = {"q8_0": q8_0, "nf4": nf4, "bf16": bf16, "f16": f16}


def main(argv):
    if len(argv) != 2 or argv[1].startswith("-"):
        sys.stdout.write(__doc__)
        return 0 if len(argv) == 2 else 2
    folder = argv[1]
    with open(os.path.join(folder, "cases.json")) as f:
        cases = json.load(f)
    for case in cases:
        name, rows, cols = case["name"], case["rows"], case["cols"]
        w = np.fromfile(os.path.join(folder, name + ".f32"), dtype="<f4").astype(F32)
        if w.size != rows * cols:
            sys.stderr.write(f"{name}: {w.size} values, not {rows} x {cols}\n")
            return 2
        w = w.reshape(rows, cols)
        for fmt in case["formats"]:
            for suffix, array in FORMATS[fmt](w).items():
                dtype = {"u16": "<u2", "i8": "i1", "u8": "u1", "f32": "<f4"}[suffix.split(".")[1]]
                np.ascontiguousarray(array).astype(dtype).tofile(os.path.join(folder, f"{name}.{fmt}.{suffix}"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
