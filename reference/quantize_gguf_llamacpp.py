#!/usr/bin/env python3
"""llama.cpp's own model quantizer (llama_model_quantize, what the llama-quantize tool runs), as an outside
check of the tensor types and bytes of webtune's Q8_0 GGUF exports (src/formats/gguf-model.ts).

The library is libllama from node-llama-cpp's prebuilt llama.cpp (tools/llama, `npm run setup:llama`), called
through ctypes: the standard library only. llama_model_quantize reads a GGUF (webtune's f32 export), picks
each tensor's type by llama.cpp's rules for the file type (which tensors it quantizes at all, the output and
token embedding, the fallback for rows that are not whole blocks) and writes the quantized GGUF.

Usage: quantize_gguf_llamacpp.py LIBDIR IN.gguf OUT.gguf [FTYPE]
  LIBDIR holds libllama*.so (or .dylib); FTYPE is a llama_ftype number (default 7, LLAMA_FTYPE_MOSTLY_Q8_0).
  Quantizes on one thread, with llama_model_quantize_default_params() otherwise; llama.cpp's log goes to
  stderr. Exits non-zero when llama_model_quantize fails.

The parameter struct below is llama.h's llama_model_quantize_params of the llama.cpp that node-llama-cpp
3.22.1 ships (tools/llama/package.json pins that version); a newer llama.cpp may lay it out differently.
"""
import ctypes
import glob
import os
import sys

LLAMA_FTYPE_MOSTLY_Q8_0 = 7


class QuantizeParams(ctypes.Structure):
    _fields_ = [
        ("nthread", ctypes.c_int32),
        ("ftype", ctypes.c_int),
        ("output_tensor_type", ctypes.c_int),
        ("token_embedding_type", ctypes.c_int),
        ("allow_requantize", ctypes.c_bool),
        ("quantize_output_tensor", ctypes.c_bool),
        ("only_copy", ctypes.c_bool),
        ("pure", ctypes.c_bool),
        ("keep_split", ctypes.c_bool),
        ("dry_run", ctypes.c_bool),
        ("imatrix", ctypes.c_void_p),
        ("kv_overrides", ctypes.c_void_p),
        ("tt_overrides", ctypes.c_void_p),
        ("prune_layers", ctypes.c_void_p),
        ("max_buf_size", ctypes.c_size_t),
    ]


def load(libdir):
    found = sorted(glob.glob(os.path.join(libdir, "libllama*.so")) + glob.glob(os.path.join(libdir, "libllama*.dylib")))
    found = [f for f in found if "common" not in os.path.basename(f)]
    if not found:
        raise SystemExit(f"no libllama in {libdir}")
    lib = ctypes.CDLL(found[0])
    lib.llama_backend_init.argtypes = []
    lib.llama_backend_init.restype = None
    lib.llama_model_quantize_default_params.argtypes = []
    lib.llama_model_quantize_default_params.restype = QuantizeParams
    lib.llama_model_quantize.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(QuantizeParams)]
    lib.llama_model_quantize.restype = ctypes.c_uint32
    return lib


def main(argv):
    if len(argv) not in (4, 5):
        sys.stdout.write(__doc__)
        return 2
    lib = load(argv[1])
    lib.llama_backend_init()
    params = lib.llama_model_quantize_default_params()
    params.nthread = 1
    params.ftype = int(argv[4]) if len(argv) == 5 else LLAMA_FTYPE_MOSTLY_Q8_0
    status = lib.llama_model_quantize(argv[2].encode(), argv[3].encode(), ctypes.byref(params))
    if status != 0:
        sys.stderr.write(f"llama_model_quantize returned {status}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
