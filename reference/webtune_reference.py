#!/usr/bin/python3
"""webtune's own PyTorch reference: the causal language models webtune fine-tunes (llama, mistral, qwen2,
qwen3, and Gemma 3's text model, gemma3_text) with PEFT LoRA adapters, in plain PyTorch, so the engine's arithmetic can be checked against something
written from the model definitions rather than from the engine.

It reads a Hugging Face model folder itself (config.json + model.safetensors; no transformers, no
tokenizer: every command takes token ids, BOS included by the caller) and computes the whole sequence at
once (no KV cache), in float32, or float64 with --f64 (lora-grad always runs in float64).

Commands (their output is JSON):
  score     MODEL --ids 1,403,407 [--adapter DIR] [--f64]
            per-token log-probs {"ids", "logprobs", "nll"} on stdout: logprobs[t] = log p(ids[t+1] | ids[..t]),
            log-softmax taken in float64 of the model's logits; nll is their negated mean.
  generate  MODEL --ids 1,403,407 [--steps 32] [--adapter DIR] [--f64]
            greedy decoding {"ids", "new"} on stdout; stops after --steps tokens or at an EOS of config.json.
  lora-grad MODEL --ids ... [--rank 4] [--alpha 8] [--targets q_proj,v_proj] [--rslora] --out FILE
            LoRA on every layer's --targets with the deterministic init below; writes the mean next-token
            cross-entropy and the gradient of every lora_A/lora_B (PEFT names) in float64 to FILE,
            {"ids", "rank", "alpha", "targets", "loss", "grads"}, and prints a summary.
  merge     MODEL --adapter DIR --out FILE
            writes FILE, the model's safetensors with each adapted weight replaced by W + scale * B @ A
            (computed in float64, stored as float32), and prints {"out", "merged_modules"}.

The model, as Hugging Face transformers defines it (modeling_llama / _mistral / _qwen2 / _qwen3):
  x = embed(ids); per layer: x += o_proj(attention(input_layernorm(x))); x += mlp(post_attention_layernorm(x));
  logits = lm_head(norm(x)) (lm_head is embed_tokens when tie_word_embeddings).
  RMSNorm(x) = x / sqrt(mean(x^2) + eps) * weight. mlp(x) = down_proj(silu(gate_proj(x)) * up_proj(x)).
  Attention: causal, softmax(q k^T * head_dim^-1/2) v, each KV head shared by heads/kv_heads consecutive
  query heads; rotary embeddings in the rotate-half layout (dimension i pairs with i + head_dim/2,
  frequency rope_theta^(-2i/head_dim)). qwen2 adds biases to q/k/v; qwen3 applies an RMSNorm over each head
  (q_norm, k_norm) before the rotation; llama's attention_bias / mlp_bias add biases; mistral attends
  within sliding_window positions.
Gemma 3's text model, as transformers defines it (modeling_gemma3, Gemma3TextConfig): x = embed(ids) *
  sqrt(hidden_size) (the factor held as a float32 tensor, then in the model's dtype); per layer:
  x += post_attention_layernorm(o_proj(attention(input_layernorm(x))));
  x += post_feedforward_layernorm(mlp(pre_feedforward_layernorm(x))); RMSNorm(x) = x / sqrt(mean(x^2) + eps)
  * (1 + weight); mlp(x) = down_proj(gelu_tanh(gate_proj(x)) * up_proj(x)); q_norm and k_norm per head
  before the rotation; scores scaled by query_pre_attn_scalar^-1/2. layer_types (or, in older configs,
  sliding_window_pattern: every pattern-th layer full) makes a layer "sliding_attention" (a query sees the
  sliding_window latest positions, itself included; RoPE base rope_local_base_freq) or "full_attention"
  (causal; RoPE base rope_theta). Tied embeddings unless the config says otherwise; no logit softcapping.
LoRA, as PEFT defines it: a wrapped linear gives y = x W^T + b + scale * (x A^T) B^T, A [r, in], B [out, r],
  scale = lora_alpha / r, or lora_alpha / sqrt(r) with use_rslora; dropout is off at evaluation.
  Adapter folders: adapter_config.json + adapter_model.safetensors with base_model.model.<module>.lora_A.weight.
Deterministic LoRA init (lora-grad; tests/helpers/det-lora.ts builds the same), for the target at position
  t of --targets in layer l:  A[i][j] = 0.05 sin(0.37 (i in + j) + l + t),  B[o][k] = 0.05 cos(0.23 (o r + k) + l - t).

Needs Debian's PyTorch and numpy (apt-get install -y python3-torch libopenblas0-pthread); run it with
/usr/bin/python3. See reference/README.md.
"""
import argparse
import json
import math
import os
import struct
import sys
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch


class InputError(Exception):
    """A problem with the inputs, reported as one line without a traceback."""


# ----------------------------------------------------------------------------------------------------
# safetensors: an unsigned 64-bit little-endian header length, a JSON header naming each tensor's dtype,
# shape and [start, end) byte range (counted from the end of the header), then the little-endian bytes.

NUMPY_TYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2",
    "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "?",
}
SAFETENSORS_TYPES = {np.dtype(code).newbyteorder("="): name for name, code in NUMPY_TYPES.items()}


def read_safetensors(path):
    """Every tensor of a .safetensors file as a native-endian numpy array, in the header's order.

    numpy has no bfloat16: BF16 tensors come back as float32, which holds each of them exactly.
    """
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise InputError(f"{path} is too short to be a safetensors file.")
    (header_length,) = struct.unpack_from("<Q", blob, 0)
    if 8 + header_length > len(blob):
        raise InputError(f"{path}: the header claims {header_length} bytes; the file is shorter.")
    header = json.loads(blob[8:8 + header_length].decode("utf-8"))
    body = memoryview(blob)[8 + header_length:]
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        start, end = entry["data_offsets"]
        shape = [int(n) for n in entry["shape"]]
        if not 0 <= start <= end <= len(body):
            raise InputError(f"{path}: tensor {name!r} lies outside the file.")
        raw = body[start:end]
        if entry["dtype"] == "BF16":
            # A bfloat16 is the top half of a float32.
            array = (np.frombuffer(raw, dtype="<u2").astype("<u4") << 16).view("<f4")
        elif entry["dtype"] in NUMPY_TYPES:
            array = np.frombuffer(raw, dtype=NUMPY_TYPES[entry["dtype"]])
        else:
            raise InputError(f"{path}: tensor {name!r} has dtype {entry['dtype']}, which this reader does not know.")
        if array.size != math.prod(shape):
            raise InputError(f"{path}: tensor {name!r} has {array.size} values for shape {shape}.")
        tensors[name] = array.reshape(shape).astype(array.dtype.newbyteorder("="))
    return tensors


def write_safetensors(path, tensors, metadata=None):
    """Writes {name: numpy array} (float64/32/16 or integers) in the given order, each in its own dtype."""
    header = {"__metadata__": {str(k): str(v) for k, v in metadata.items()}} if metadata else {}
    chunks, offset = [], 0
    for name, array in tensors.items():
        array = np.ascontiguousarray(array)
        dtype = SAFETENSORS_TYPES.get(array.dtype.newbyteorder("="))
        if dtype is None:
            raise InputError(f"Cannot write tensor {name!r} of numpy dtype {array.dtype}.")
        data = array.astype(NUMPY_TYPES[dtype]).tobytes()
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    encoded += b" " * (-len(encoded) % 8)  # the spec allows trailing spaces; 8-byte alignment for readers that map
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        for data in chunks:
            f.write(data)


# ----------------------------------------------------------------------------------------------------
# config.json, with transformers' defaults for what a config may leave out.

SUPPORTED_TYPES = ("llama", "mistral", "qwen2", "qwen3", "gemma3_text")


@dataclass(frozen=True)
class Config:
    model_type: str
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int
    rms_norm_eps: float
    rope_theta: float
    tie_word_embeddings: bool
    qkv_bias: bool
    o_bias: bool
    mlp_bias: bool
    qk_norm: bool
    sliding_window: Optional[int]
    eos_token_ids: tuple
    # Gemma 3: RMSNorm weights by (offset + weight); four norms a layer; the MLP's activation; scales.
    norm_offset: float = 0.0
    sandwich_norms: bool = False
    activation: str = "silu"
    attention_scale: Optional[float] = None  # None: head_dim^-1/2
    embed_scale: Optional[float] = None  # None: no scaling
    # Per layer (window or None, RoPE base); None: every layer (sliding_window, rope_theta).
    layers: Optional[tuple] = None

    @staticmethod
    def read(model_dir):
        with open(os.path.join(model_dir, "config.json")) as f:
            c = json.load(f)
        model_type = c.get("model_type")
        if model_type not in SUPPORTED_TYPES:
            raise InputError(f"model_type {model_type!r} is not one of {', '.join(SUPPORTED_TYPES)}.")
        rope_scaling = c.get("rope_scaling")
        if rope_scaling and (rope_scaling.get("rope_type") or rope_scaling.get("type")) != "default":
            raise InputError(f"rope_scaling {rope_scaling} is not implemented here (plain RoPE only).")
        if model_type == "gemma3_text":
            return Config.read_gemma3(c)
        if c.get("hidden_act", "silu") != "silu":
            raise InputError(f"hidden_act {c['hidden_act']!r} is not implemented here (silu only).")
        if model_type in ("qwen2", "qwen3") and c.get("use_sliding_window"):
            raise InputError(f"{model_type} with use_sliding_window is not implemented here.")
        heads = c["num_attention_heads"]
        kv_heads = c.get("num_key_value_heads") or heads
        if heads % kv_heads:
            raise InputError(f"num_key_value_heads {kv_heads} does not divide num_attention_heads {heads}.")
        # Qwen3Config's head_dim defaults to 128; the others' to hidden_size / heads.
        head_dim = c.get("head_dim") or (128 if model_type == "qwen3" else c["hidden_size"] // heads)
        attention_bias = bool(c.get("attention_bias", False))
        eos = c.get("eos_token_id")
        return Config(
            model_type=model_type,
            hidden_size=c["hidden_size"],
            intermediate_size=c["intermediate_size"],
            num_layers=c["num_hidden_layers"],
            num_heads=heads,
            num_kv_heads=kv_heads,
            head_dim=head_dim,
            vocab_size=c["vocab_size"],
            rms_norm_eps=float(c.get("rms_norm_eps", 1e-6)),
            rope_theta=float(c.get("rope_theta", 10000.0)),
            tie_word_embeddings=bool(c.get("tie_word_embeddings", False)),
            # Qwen2's q/k/v always have biases and its o_proj never; llama and qwen3 follow attention_bias.
            qkv_bias=model_type == "qwen2" or (model_type in ("llama", "qwen3") and attention_bias),
            o_bias=model_type in ("llama", "qwen3") and attention_bias,
            mlp_bias=model_type == "llama" and bool(c.get("mlp_bias", False)),
            qk_norm=model_type == "qwen3",
            sliding_window=(c.get("sliding_window", 4096) or None) if model_type == "mistral" else None,
            eos_token_ids=tuple(eos if isinstance(eos, list) else [] if eos is None else [eos]),
        )

    @staticmethod
    def read_gemma3(c):
        """Gemma3TextConfig's fields and defaults."""
        activation = c.get("hidden_activation", "gelu_pytorch_tanh")
        if activation != "gelu_pytorch_tanh":
            raise InputError(f"hidden_activation {activation!r} is not implemented here (gelu_pytorch_tanh only).")
        for key in ("final_logit_softcapping", "attn_logit_softcapping"):
            if c.get(key) is not None:
                raise InputError(f"{key} is not implemented here.")
        if c.get("use_bidirectional_attention"):
            raise InputError("use_bidirectional_attention is not implemented here.")
        heads = c.get("num_attention_heads", 8)
        kv_heads = c.get("num_key_value_heads", 4)
        layers = c.get("num_hidden_layers", 26)
        types = c.get("layer_types")
        if types is None:
            pattern = c.get("sliding_window_pattern", 6)
            types = ["full_attention" if (i + 1) % pattern == 0 else "sliding_attention" for i in range(layers)]
        if len(types) != layers:
            raise InputError(f"layer_types names {len(types)} layers; the config has {layers}.")
        window = c.get("sliding_window", 4096)
        rope_theta = float(c.get("rope_theta", 1_000_000.0))
        local_theta = float(c.get("rope_local_base_freq", 10_000.0))
        attention_bias = bool(c.get("attention_bias", False))
        eos = c.get("eos_token_id", 1)
        return Config(
            model_type="gemma3_text",
            hidden_size=c.get("hidden_size", 2304),
            intermediate_size=c.get("intermediate_size", 9216),
            num_layers=layers,
            num_heads=heads,
            num_kv_heads=kv_heads,
            head_dim=c.get("head_dim", 256),
            vocab_size=c.get("vocab_size", 262_208),
            rms_norm_eps=float(c.get("rms_norm_eps", 1e-6)),
            rope_theta=rope_theta,
            tie_word_embeddings=bool(c.get("tie_word_embeddings", True)),
            qkv_bias=attention_bias,
            o_bias=attention_bias,
            mlp_bias=False,
            qk_norm=True,
            sliding_window=None,
            eos_token_ids=tuple(eos if isinstance(eos, list) else [] if eos is None else [eos]),
            norm_offset=1.0,
            sandwich_norms=True,
            activation="gelu_tanh",
            attention_scale=float(c.get("query_pre_attn_scalar", 256)) ** -0.5,
            embed_scale=c.get("hidden_size", 2304) ** 0.5,
            layers=tuple((window, local_theta) if kind == "sliding_attention" else (None, rope_theta)
                         for kind in types),
        )

    def layer(self, index):
        """(sliding window or None, RoPE base) of layer `index`."""
        return self.layers[index] if self.layers else (self.sliding_window, self.rope_theta)


# ----------------------------------------------------------------------------------------------------
# LoRA as PEFT defines it.

# PEFT's target names and where each linear sits in a decoder layer.
TARGET_MODULES = {
    "q_proj": "self_attn.q_proj", "k_proj": "self_attn.k_proj", "v_proj": "self_attn.v_proj",
    "o_proj": "self_attn.o_proj", "gate_proj": "mlp.gate_proj", "up_proj": "mlp.up_proj",
    "down_proj": "mlp.down_proj",
}
PEFT_PREFIX = "base_model.model."


def lora_scale(alpha, rank, rslora=False):
    return alpha / math.sqrt(rank) if rslora else alpha / rank


@dataclass
class Lora:
    A: torch.Tensor  # [r, in]
    B: torch.Tensor  # [out, r]
    scale: float

    def __call__(self, x):
        return self.scale * ((x @ self.A.T) @ self.B.T)


def read_adapter(adapter_dir):
    """A PEFT LoRA folder as (adapter_config.json's dict, {module path: (A, B, scale)}) with numpy A and B,
    in the order of adapter_model.safetensors. Refuses what PEFT would compute differently from
    W + scale * B @ A on every module alike."""
    with open(os.path.join(adapter_dir, "adapter_config.json")) as f:
        config = json.load(f)
    if config.get("peft_type", "LORA") != "LORA":
        raise InputError(f"{adapter_dir}: peft_type {config['peft_type']!r} is not LoRA.")
    for key, harmless in (("use_dora", False), ("fan_in_fan_out", False), ("bias", "none")):
        if config.get(key, harmless) != harmless:
            raise InputError(f"{adapter_dir}: {key} = {config[key]!r} is not implemented here.")
    for key in ("rank_pattern", "alpha_pattern", "modules_to_save"):
        if config.get(key):
            raise InputError(f"{adapter_dir}: {key} is not implemented here.")
    rank, alpha = config["r"], config["lora_alpha"]
    scale = lora_scale(alpha, rank, config.get("use_rslora", False))
    tensors = read_safetensors(os.path.join(adapter_dir, "adapter_model.safetensors"))
    modules = {}
    for name in tensors:
        if not (name.startswith(PEFT_PREFIX) and name.endswith((".lora_A.weight", ".lora_B.weight"))):
            raise InputError(f"{adapter_dir}: tensor {name!r} is not a LoRA A or B weight.")
        if name.endswith(".lora_A.weight"):
            module = name[len(PEFT_PREFIX):-len(".lora_A.weight")]
            A = tensors[name]
            B = tensors.get(f"{PEFT_PREFIX}{module}.lora_B.weight")
            if B is None or A.shape[0] != rank or B.shape[1] != rank:
                raise InputError(f"{adapter_dir}: {module} needs lora_A [r, in] and lora_B [out, r] with r = {rank}.")
            modules[module] = (A, B, scale)
    return config, modules


def det_lora(layer, target_index, out_features, in_features, rank):
    """The deterministic LoRA init of lora-grad (see the module's help), in float64."""
    a = torch.arange(rank * in_features, dtype=torch.float64).reshape(rank, in_features)
    b = torch.arange(out_features * rank, dtype=torch.float64).reshape(out_features, rank)
    return 0.05 * torch.sin(0.37 * a + layer + target_index), 0.05 * torch.cos(0.23 * b + layer - target_index)


# ----------------------------------------------------------------------------------------------------
# The model.

class CausalLM:
    def __init__(self, model_dir, dtype=torch.float32):
        self.config = Config.read(model_dir)
        self.dtype = dtype
        tensors = read_safetensors(os.path.join(model_dir, "model.safetensors"))
        self.weights = {name: torch.from_numpy(array).to(dtype) for name, array in tensors.items()}
        if not self.config.tie_word_embeddings and "lm_head.weight" not in self.weights:
            raise InputError(f"{model_dir}: tie_word_embeddings is false (or absent), and model.safetensors has no lm_head.weight.")
        self.lora = {}  # module path ("model.layers.0.self_attn.q_proj") -> Lora

    def attach(self, adapter_dir):
        _, modules = read_adapter(adapter_dir)
        for module, (A, B, scale) in modules.items():
            if module + ".weight" not in self.weights:
                raise InputError(f"{adapter_dir}: the model has no linear {module}.")
            self.lora[module] = Lora(torch.from_numpy(A).to(self.dtype), torch.from_numpy(B).to(self.dtype), scale)

    def weight(self, name):
        if name not in self.weights:
            raise InputError(f"model.safetensors has no tensor {name!r}, which this {self.config.model_type} config needs.")
        return self.weights[name]

    def linear(self, module, x, bias):
        y = x @ self.weight(module + ".weight").T
        if bias:
            y = y + self.weight(module + ".bias")
        if module in self.lora:
            y = y + self.lora[module](x)
        return y

    def rms_norm(self, x, name):
        variance = x.pow(2).mean(-1, keepdim=True)
        weight = self.weight(name + ".weight")
        return x * torch.rsqrt(variance + self.config.rms_norm_eps) * (self.config.norm_offset + weight)

    def rotary(self, length, theta):
        """cos and sin [length, 1, head_dim] of every position's angles, computed in float64 and rounded once."""
        c = self.config
        exponents = torch.arange(0, c.head_dim, 2, dtype=torch.float64) / c.head_dim
        frequencies = 1.0 / theta ** exponents
        angles = torch.arange(length, dtype=torch.float64)[:, None] * frequencies[None, :]
        angles = torch.cat([angles, angles], dim=-1)[:, None, :]
        return angles.cos().to(self.dtype), angles.sin().to(self.dtype)

    def mask(self, length, window):
        """Additive: 0 where query t may see key s (s <= t, and within the sliding window), else -inf."""
        t = torch.arange(length)[:, None]
        s = torch.arange(length)[None, :]
        hidden = s > t
        if window:
            hidden |= t - s >= window
        return torch.zeros(length, length, dtype=self.dtype).masked_fill(hidden, float("-inf"))

    def attention(self, prefix, x, cos, sin, mask):
        c = self.config
        length = x.shape[0]
        q = self.linear(prefix + "q_proj", x, c.qkv_bias).view(length, c.num_heads, c.head_dim)
        k = self.linear(prefix + "k_proj", x, c.qkv_bias).view(length, c.num_kv_heads, c.head_dim)
        v = self.linear(prefix + "v_proj", x, c.qkv_bias).view(length, c.num_kv_heads, c.head_dim)
        if c.qk_norm:
            q = self.rms_norm(q, prefix + "q_norm")
            k = self.rms_norm(k, prefix + "k_norm")

        def rotate(h):
            first, second = h[..., : c.head_dim // 2], h[..., c.head_dim // 2:]
            return h * cos + torch.cat([-second, first], dim=-1) * sin

        q, k = rotate(q), rotate(k)
        group = c.num_heads // c.num_kv_heads
        k = k.repeat_interleave(group, dim=1)
        v = v.repeat_interleave(group, dim=1)
        scale = c.attention_scale if c.attention_scale is not None else c.head_dim ** -0.5
        scores = torch.einsum("thd,shd->hts", q, k) * scale + mask
        out = torch.einsum("hts,shd->thd", torch.softmax(scores, dim=-1), v)
        return self.linear(prefix + "o_proj", out.reshape(length, c.num_heads * c.head_dim), c.o_bias)

    def mlp(self, prefix, x):
        bias = self.config.mlp_bias
        gate = self.linear(prefix + "gate_proj", x, bias)
        up = self.linear(prefix + "up_proj", x, bias)
        if self.config.activation == "gelu_tanh":
            gated = torch.nn.functional.gelu(gate, approximate="tanh")
        else:
            gated = torch.nn.functional.silu(gate)
        return self.linear(prefix + "down_proj", gated * up, bias)

    def logits(self, ids):
        c = self.config
        if not ids or min(ids) < 0 or max(ids) >= c.vocab_size:
            raise InputError(f"Token ids must be given and lie in [0, {c.vocab_size}).")
        x = self.weight("model.embed_tokens.weight")[torch.tensor(ids)]
        if c.embed_scale is not None:
            x = x * torch.tensor(c.embed_scale, dtype=torch.float32).to(self.dtype)
        for layer in range(c.num_layers):
            prefix = f"model.layers.{layer}."
            window, theta = c.layer(layer)
            cos, sin = self.rotary(len(ids), theta)
            mask = self.mask(len(ids), window)
            attended = self.attention(prefix + "self_attn.", self.rms_norm(x, prefix + "input_layernorm"), cos, sin, mask)
            if not c.sandwich_norms:
                x = x + attended
                x = x + self.mlp(prefix + "mlp.", self.rms_norm(x, prefix + "post_attention_layernorm"))
                continue
            x = x + self.rms_norm(attended, prefix + "post_attention_layernorm")
            fed = self.mlp(prefix + "mlp.", self.rms_norm(x, prefix + "pre_feedforward_layernorm"))
            x = x + self.rms_norm(fed, prefix + "post_feedforward_layernorm")
        x = self.rms_norm(x, "model.norm")
        head = "model.embed_tokens.weight" if c.tie_word_embeddings else "lm_head.weight"
        return x @ self.weight(head).T


# ----------------------------------------------------------------------------------------------------
# Commands.

def score(model, ids):
    if len(ids) < 2:
        raise InputError("score needs at least two ids.")
    with torch.no_grad():
        logprobs = torch.log_softmax(model.logits(ids).to(torch.float64), dim=-1)
    per_token = [logprobs[t, ids[t + 1]].item() for t in range(len(ids) - 1)]
    return {"ids": ids, "logprobs": per_token, "nll": -sum(per_token) / len(per_token)}


def generate(model, ids, steps):
    out = list(ids)
    with torch.no_grad():
        for _ in range(steps):
            token = int(model.logits(out)[-1].argmax())
            out.append(token)
            if token in model.config.eos_token_ids:
                break
    return {"ids": out, "new": out[len(ids):]}


def lora_grad(model, ids, rank, alpha, targets, rslora):
    if len(ids) < 2:
        raise InputError("lora-grad needs at least two ids.")
    unknown = [t for t in targets if t not in TARGET_MODULES]
    if unknown:
        raise InputError(f"Unknown --targets {unknown}; choose from {', '.join(TARGET_MODULES)}.")
    scale = lora_scale(alpha, rank, rslora)
    for layer in range(model.config.num_layers):
        for index, target in enumerate(targets):
            module = f"model.layers.{layer}.{TARGET_MODULES[target]}"
            out_features, in_features = model.weight(module + ".weight").shape
            A, B = det_lora(layer, index, out_features, in_features, rank)
            model.lora[module] = Lora(A.requires_grad_(), B.requires_grad_(), scale)
    loss = torch.nn.functional.cross_entropy(model.logits(ids[:-1]), torch.tensor(ids[1:]))
    loss.backward()
    grads = {}
    for module, lora in model.lora.items():
        grads[f"{PEFT_PREFIX}{module}.lora_A.weight"] = lora.A.grad.tolist()
        grads[f"{PEFT_PREFIX}{module}.lora_B.weight"] = lora.B.grad.tolist()
    return {"ids": ids, "rank": rank, "alpha": alpha, "targets": targets, "loss": loss.item(), "grads": grads}


def merge(model_dir, adapter_dir, out):
    tensors = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    _, modules = read_adapter(adapter_dir)
    merged = {name: array.astype(np.float32) for name, array in tensors.items()}
    for module, (A, B, scale) in modules.items():
        name = module + ".weight"
        if name not in tensors:
            raise InputError(f"{adapter_dir}: the model has no linear {module}.")
        W = tensors[name].astype(np.float64)
        merged[name] = (W + scale * (B.astype(np.float64) @ A.astype(np.float64))).astype(np.float32)
    write_safetensors(out, merged, {"format": "pt"})
    return {"out": out, "merged_modules": len(modules)}


def parse_ids(text):
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise InputError(f"--ids {text!r}: give comma-separated integers, e.g. 1,403,407.") from None


def arguments(argv):
    parser = argparse.ArgumentParser(
        prog="webtune_reference.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, help, ids=True, adapter="optional"):
        sub = commands.add_parser(name, help=help, description=help)
        sub.add_argument("model_dir", metavar="MODEL", help="a model folder: config.json + model.safetensors")
        if ids:
            sub.add_argument("--ids", required=True, type=parse_ids, help="comma-separated token ids, BOS included")
        if adapter:
            sub.add_argument("--adapter", required=adapter == "required", metavar="DIR",
                             help="a PEFT LoRA folder: adapter_config.json + adapter_model.safetensors")
        return sub

    sub = command("score", "per-token log-probs of --ids")
    sub.add_argument("--f64", action="store_true", help="compute in float64 (default float32)")
    sub = command("generate", "greedy continuation of --ids")
    sub.add_argument("--steps", type=int, default=32, help="new tokens at most (default 32)")
    sub.add_argument("--f64", action="store_true", help="compute in float64 (default float32)")
    sub = command("lora-grad", "loss and LoRA gradients (float64) with the deterministic init", adapter=None)
    sub.add_argument("--rank", type=int, default=4, help="LoRA rank r (default 4)")
    sub.add_argument("--alpha", type=float, default=8.0, help="lora_alpha (default 8)")
    sub.add_argument("--targets", default="q_proj,v_proj", help="comma-separated (default q_proj,v_proj)")
    sub.add_argument("--rslora", action="store_true", help="scale alpha / sqrt(r) instead of alpha / r")
    sub.add_argument("--out", required=True, metavar="FILE", help="where to write the gradients (JSON)")
    sub = command("merge", "write the model's weights with the adapter folded in", ids=False, adapter="required")
    sub.add_argument("--out", required=True, metavar="FILE", help="the merged .safetensors to write")
    return parser.parse_args(argv)


def main(argv=None):
    a = arguments(argv)
    if a.command == "merge":
        print(json.dumps(merge(a.model_dir, a.adapter, a.out)))
        return 0
    if a.command == "lora-grad":
        model = CausalLM(a.model_dir, torch.float64)
        result = lora_grad(model, a.ids, a.rank, a.alpha, a.targets.split(","), a.rslora)
        with open(a.out, "w") as f:
            json.dump(result, f)
        print(json.dumps({"loss": result["loss"], "tensors": len(result["grads"]), "out": a.out}))
        return 0
    model = CausalLM(a.model_dir, torch.float64 if a.f64 else torch.float32)
    if a.adapter:
        model.attach(a.adapter)
    result = score(model, a.ids) if a.command == "score" else generate(model, a.ids, a.steps)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (InputError, OSError, KeyError, json.JSONDecodeError) as error:
        print(f"webtune_reference.py: {error}", file=sys.stderr)
        sys.exit(2)
