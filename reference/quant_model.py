#!/usr/bin/env python3
"""A model folder whose frozen weights are what webtune holds with `--weights FORMAT`, dequantized back to
float32 by quant_reference.py's definitions, so that webtune_reference.py can score the very weights webtune
computes with.

Which matrix takes which format (what webtune's --weights means):
  the decoder's projections (q/k/v/o_proj, gate/up/down_proj .weight)  FORMAT
  the vocabulary matrices (model.embed_tokens.weight, lm_head.weight)  FORMAT, but q8_0 when FORMAT is nf4
  everything else (norms, biases)                                      float32, as stored
bf16 means "16 bits": a checkpoint's own bf16 or f16 values are kept (f16 ones as f16), float32 ones are
rounded to bf16.

Usage: quant_model.py SRC_DIR OUT_DIR FORMAT   (FORMAT: bf16, q8_0 or nf4)
"""
import json
import os
import shutil
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from quant_reference import F32, NF4_LEVELS, bf16, f16, padded_rows, q8_0  # noqa: E402

PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
VOCABULARY = ("model.embed_tokens.weight", "lm_head.weight")
# kernels.cu's dQuantizeNF4 thresholds (float32 literals), in ascending order.
NF4_THRESHOLDS = np.array(
    [
        -0.8480964004993439, -0.6106329262256622, -0.4599952697753906, -0.33967943489551544,
        -0.23460740596055984, -0.13791173323988914, -0.045525018125772476, 0.03979014977812767,
        0.1202552504837513, 0.2035212516784668, 0.2920137718319893, 0.3893125355243683,
        0.5016634166240692, 0.6427869200706482, 0.8614784181118011,
    ],
    dtype=F32,
)


def nf4_values(w):
    """nf4 (quant_reference.nf4) vectorized for whole models: dQuantizeNF4's tree of `x > t` tests gives the
    number of thresholds below x, which searchsorted counts; dequantized, padding dropped."""
    rows, cols = w.shape
    blocks = padded_rows(w, 64).reshape(-1, 64)
    absmax = np.max(np.abs(blocks), axis=1)
    scale = np.zeros_like(absmax)
    with np.errstate(over="ignore", divide="ignore"):
        np.divide(F32(1), absmax, out=scale, where=absmax != 0)
    with np.errstate(invalid="ignore", over="ignore"):
        x = (blocks * scale[:, None]).astype(F32)
    codes = np.searchsorted(NF4_THRESHOLDS, x, side="left")
    codes = np.where(np.isnan(x), 0, codes)
    values = NF4_LEVELS[codes] * absmax[:, None]
    return values.reshape(rows, -1)[:, :cols]


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    body = data[8 + length :]
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        start, end = entry["data_offsets"]
        raw = np.frombuffer(body[start:end], dtype="<u2" if entry["dtype"] in ("BF16", "F16") else "<f4")
        if entry["dtype"] == "BF16":
            values = (raw.astype(np.uint32) << 16).view(F32)
        elif entry["dtype"] == "F16":
            values = raw.view(np.float16).astype(F32)
        else:
            values = raw.astype(F32)
        tensors[name] = (entry["dtype"], values.reshape(entry["shape"]))
    return tensors


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, values in tensors.items():
        blob = np.ascontiguousarray(values, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(values.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def held_as(name, fmt):
    if name in VOCABULARY:
        return "q8_0" if fmt == "nf4" else fmt
    if name.endswith(".weight") and name.split(".")[-2] in PROJECTIONS:
        return fmt
    return "f32"


def dequantized(values, dtype, fmt):
    if fmt == "f32":
        return values
    if fmt == "bf16":
        return (f16 if dtype == "F16" else bf16)(values)["values.f32"]
    if fmt == "q8_0":
        return q8_0(values)["values.f32"]
    return nf4_values(values)


def main(argv):
    if len(argv) != 4 or argv[3] not in ("bf16", "q8_0", "nf4"):
        sys.stdout.write(__doc__)
        return 2
    src, out, fmt = argv[1:]
    os.makedirs(out, exist_ok=True)
    for name in os.listdir(src):
        if not name.endswith(".safetensors") and os.path.isfile(os.path.join(src, name)):
            shutil.copy(os.path.join(src, name), os.path.join(out, name))
    tensors = read_safetensors(os.path.join(src, "model.safetensors"))
    result = {name: dequantized(values, dtype, held_as(name, fmt)) for name, (dtype, values) in tensors.items()}
    write_safetensors(os.path.join(out, "model.safetensors"), result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
