#!/usr/bin/env python3
"""llama.cpp's own q8_0, run from its shared library, as an outside check of webtune's q8_0 (src/engine/quant.ts)
and of reference/quant_reference.py.

The library is libggml-base from node-llama-cpp's prebuilt llama.cpp (tools/llama, `npm run setup:llama`).
Each row, padded with zeros to whole blocks of 32, is quantized by ggml_quantize_chunk(GGML_TYPE_Q8_0, ...)
(what llama-quantize calls for every tensor it writes as Q8_0) and decoded by dequantize_row_q8_0; f16 rows
go through ggml_fp32_to_fp16_row. Called through ctypes: the standard library and numpy only.

Usage: quant_llamacpp.py LIB DIR
  DIR/cases.json and DIR/<name>.f32 as for quant_reference.py; only the formats q8_0 and f16 of each case
  are made. Writes <name>.ggml-q8_0.scales.u16, .quants.i8 and .values.f32 (the blocks' f16 d and int8
  qs, unpacked from ggml's 34-byte block_q8_0, and the decoded [rows, cols]), .blocks.u8 (the 34-byte
  blocks themselves, as a GGUF file stores a Q8_0 tensor), <name>.ggml-f16.bits.u16, and prints
  {"type_name", "type_size", "block_size"} of GGML_TYPE_Q8_0 as JSON.
"""
import ctypes
import json
import os
import sys

import numpy as np

GGML_TYPE_Q8_0 = 8  # ggml.h's enum ggml_type
QK8_0 = 32


def load(path):
    lib = ctypes.CDLL(path)
    lib.ggml_type_name.argtypes = [ctypes.c_int]
    lib.ggml_type_name.restype = ctypes.c_char_p
    lib.ggml_type_size.argtypes = [ctypes.c_int]
    lib.ggml_type_size.restype = ctypes.c_size_t
    lib.ggml_blck_size.argtypes = [ctypes.c_int]
    lib.ggml_blck_size.restype = ctypes.c_int64
    # size_t ggml_quantize_chunk(type, const float * src, void * dst, int64_t start, int64_t nrows,
    #                            int64_t n_per_row, const float * imatrix)
    lib.ggml_quantize_chunk.argtypes = [ctypes.c_int] + [ctypes.c_void_p] * 2 + [ctypes.c_int64] * 3
    lib.ggml_quantize_chunk.argtypes += [ctypes.c_void_p]
    lib.ggml_quantize_chunk.restype = ctypes.c_size_t
    # void dequantize_row_q8_0(const block_q8_0 * x, float * y, int64_t k)
    lib.dequantize_row_q8_0.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    lib.dequantize_row_q8_0.restype = None
    # void ggml_fp32_to_fp16_row(const float * x, ggml_fp16_t * y, int64_t n)
    lib.ggml_fp32_to_fp16_row.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    lib.ggml_fp32_to_fp16_row.restype = None
    return lib


def q8_0(lib, w):
    rows, cols = w.shape
    width = -(-cols // QK8_0) * QK8_0
    padded = np.zeros((rows, width), dtype=np.float32)
    padded[:, :cols] = w
    size = lib.ggml_type_size(GGML_TYPE_Q8_0)
    blocks = np.zeros(rows * (width // QK8_0) * size, dtype=np.uint8)
    written = lib.ggml_quantize_chunk(
        GGML_TYPE_Q8_0, padded.ctypes.data, blocks.ctypes.data, 0, rows, width, None
    )
    if written != blocks.size:
        raise RuntimeError(f"ggml_quantize_chunk wrote {written} bytes, not {blocks.size}")
    decoded = np.zeros((rows, width), dtype=np.float32)
    lib.dequantize_row_q8_0(blocks.ctypes.data, decoded.ctypes.data, rows * width)
    by_block = blocks.reshape(-1, size)
    return {
        "scales.u16": by_block[:, :2].copy().view("<u2").reshape(rows, -1),
        "quants.i8": by_block[:, 2:].copy().view(np.int8).reshape(rows, -1),
        "values.f32": decoded[:, :cols],
        "blocks.u8": blocks,
    }


def f16(lib, w):
    src = np.ascontiguousarray(w, dtype=np.float32)
    bits = np.zeros(w.shape, dtype=np.uint16)
    lib.ggml_fp32_to_fp16_row(src.ctypes.data, bits.ctypes.data, src.size)
    return {"bits.u16": bits}


def main(argv):
    if len(argv) != 3:
        sys.stdout.write(__doc__)
        return 2
    lib = load(argv[1])
    folder = argv[2]
    with open(os.path.join(folder, "cases.json")) as f:
        cases = json.load(f)
    for case in cases:
        name, rows, cols = case["name"], case["rows"], case["cols"]
        w = np.fromfile(os.path.join(folder, name + ".f32"), dtype="<f4").astype(np.float32)
        w = w.reshape(rows, cols)
        for fmt, run in (("q8_0", q8_0), ("f16", f16)):
            if fmt not in case["formats"]:
                continue
            for suffix, array in run(lib, w).items():
                path = os.path.join(folder, f"{name}.ggml-{fmt}.{suffix}")
                np.ascontiguousarray(array).tofile(path)
    geometry = {
        "type_name": lib.ggml_type_name(GGML_TYPE_Q8_0).decode(),
        "type_size": lib.ggml_type_size(GGML_TYPE_Q8_0),
        "block_size": lib.ggml_blck_size(GGML_TYPE_Q8_0),
    }
    sys.stdout.write(json.dumps(geometry) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
