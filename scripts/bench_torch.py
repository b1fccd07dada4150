#!/usr/bin/python3
"""The peer a user would otherwise pick: PyTorch eager on this machine's CPU, with LoRA as PEFT
computes it (scale * (x @ A.T) @ B.T on q_proj and v_proj, base frozen), AdamW on the LoRA weights
only. Same shapes as `npm run bench`: seq 128, batch 4, r=8; decode is greedy with a KV cache after
a 16-token prompt. PEFT itself is not installable here (no PyPI), so its LoRA is written out.

  /usr/bin/python3 scripts/bench_torch.py [--steps 3] [--threads N] [--json]
Needs apt-get install -y python3-torch libopenblas0-pthread. --threads sets OpenBLAS's threads (Debian's
torch computes its products in OpenBLAS, which otherwise takes every core whatever torch.get_num_threads
says). Each result carries the achieved GFLOP/s of the step's products, counted as src/engine/flops.ts
counts them, and the peak GFLOP/s of one large product on this machine.
"""
import argparse
import json
import math
import os
import sys
import time

import torch

SMOLLM2_4L = dict(hidden=576, heads=9, kv=3, inter=1536, vocab=49152, layers=4, theta=100000.0)
STORIES = dict(hidden=64, heads=8, kv=4, inter=172, vocab=512, layers=5, theta=10000.0)


class Lora(torch.nn.Module):
    def __init__(self, base, r=8, alpha=16):
        super().__init__()
        self.base = base
        self.A = torch.nn.Parameter(torch.empty(r, base.in_features).uniform_(-1 / math.sqrt(base.in_features), 1 / math.sqrt(base.in_features)))
        self.B = torch.nn.Parameter(torch.zeros(base.out_features, r))
        self.scale = alpha / r

    def forward(self, x):
        return self.base(x) + self.scale * (x @ self.A.T) @ self.B.T


def rms(x, w, eps=1e-5):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


class Model(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        d, hd = c["hidden"], c["hidden"] // c["heads"]
        self.hd = hd
        self.embed = torch.nn.Embedding(c["vocab"], d)
        self.layers = torch.nn.ModuleList()
        for _ in range(c["layers"]):
            L = torch.nn.Module()
            L.q = Lora(torch.nn.Linear(d, c["heads"] * hd, bias=False))
            L.k = torch.nn.Linear(d, c["kv"] * hd, bias=False)
            L.v = Lora(torch.nn.Linear(d, c["kv"] * hd, bias=False))
            L.o = torch.nn.Linear(c["heads"] * hd, d, bias=False)
            L.g = torch.nn.Linear(d, c["inter"], bias=False)
            L.u = torch.nn.Linear(d, c["inter"], bias=False)
            L.dn = torch.nn.Linear(c["inter"], d, bias=False)
            L.n1 = torch.nn.Parameter(torch.ones(d))
            L.n2 = torch.nn.Parameter(torch.ones(d))
            self.layers.append(L)
        self.norm = torch.nn.Parameter(torch.ones(d))
        for name, p in self.named_parameters():
            p.requires_grad = name.endswith(".A") or name.endswith(".B")

    def forward(self, ids, cache=None):
        c, hd = self.c, self.hd
        B, T = ids.shape
        past = 0 if cache is None or cache[0] is None else cache[0][0].shape[2]
        inv = 1.0 / (c["theta"] ** (torch.arange(0, hd, 2).float() / hd))
        ang = torch.outer(torch.arange(past, past + T).float(), inv)
        ang = torch.cat([ang, ang], -1)
        cos, sin = ang.cos(), ang.sin()

        def rope(x):
            x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
            return x * cos + torch.cat([-x2, x1], -1) * sin

        x = self.embed(ids)
        for i, L in enumerate(self.layers):
            h = rms(x, L.n1)
            q = rope(L.q(h).view(B, T, c["heads"], hd).transpose(1, 2))
            k = rope(L.k(h).view(B, T, c["kv"], hd).transpose(1, 2))
            v = L.v(h).view(B, T, c["kv"], hd).transpose(1, 2)
            if cache is not None:
                if cache[i] is not None:
                    k = torch.cat([cache[i][0], k], 2)
                    v = torch.cat([cache[i][1], v], 2)
                cache[i] = (k, v)
            rep = c["heads"] // c["kv"]
            k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
            att = q @ k.transpose(-1, -2) / math.sqrt(hd)
            if T > 1:
                att = att + torch.full((T, k.shape[2]), float("-inf")).triu(1 + past)
            o = torch.softmax(att, -1) @ v
            x = x + L.o(o.transpose(1, 2).reshape(B, T, -1))
            h = rms(x, L.n2)
            x = x + L.dn(torch.nn.functional.silu(L.g(h)) * L.u(h))
        return rms(x, self.norm) @ self.embed.weight.T


def step_flops(c, batch, steps):
    """Product FLOPs of one training step without checkpointing, every position through the lm_head."""
    d, hd, rows = c["hidden"], c["hidden"] // c["heads"], batch * steps
    q, kv, ff = c["heads"] * hd, c["kv"] * hd, c["inter"]
    linear = 2 * rows * (d * q + 2 * d * kv + q * d + 3 * d * ff)
    attention = 4 * batch * c["heads"] * steps * steps * hd
    lora = 2 * rows * 8 * ((d + q) + (d + kv))
    layer = (linear + attention + lora) + (linear + 2 * attention + 2 * lora)
    return c["layers"] * layer + 4 * rows * d * c["vocab"]


def peak_gflops():
    """One [512, 576] x [576, 1536] product, the shape of an MLP projection, at its best of 20."""
    a, b = torch.randn(512, 576), torch.randn(576, 1536)
    best = float("inf")
    for _ in range(20):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * 512 * 576 * 1536 / best / 1e9


def bench(name, c, steps, seq=128, batch=4, decode=32):
    torch.manual_seed(0)
    m = Model(c)
    opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-3)
    ids = torch.randint(3, c["vocab"], (batch, seq))

    def step():
        loss = torch.nn.functional.cross_entropy(m(ids[:, :-1]).reshape(-1, c["vocab"]), ids[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in m.parameters() if p.requires_grad], 1.0)
        opt.step()

    step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = time.perf_counter() - t
    train = steps * batch * seq / seconds
    gflops = steps * step_flops(c, batch, seq - 1) / seconds / 1e9
    with torch.no_grad():
        cache = [None] * c["layers"]
        logits = m(ids[:1, :16], cache)
        nxt = logits[:, -1].argmax(-1, keepdim=True)
        t = time.perf_counter()
        for _ in range(decode):
            nxt = m(nxt, cache)[:, -1].argmax(-1, keepdim=True)
        dec = decode / (time.perf_counter() - t)
    return {"model": name, "backend": "pytorch-cpu", "where": "python", "threads": THREADS, "seq": seq, "batch": batch,
            "train_tokens_per_s": round(train), "decode_tokens_per_s": round(dec, 1),
            "train_gflops": round(gflops, 1), "peak_gflops": round(peak_gflops(), 1)}


THREADS = os.cpu_count()

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if os.environ.get("OPENBLAS_NUM_THREADS") != str(a.threads):
        # OpenBLAS reads its thread count when it loads: start again with it set.
        env = dict(os.environ, OPENBLAS_NUM_THREADS=str(a.threads))
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    # torch's own intra-op pool stays at its default (1 here): raising it too oversubscribes the cores
    # OpenBLAS already uses, and measured slower (389 against 672 tokens/s on 2 cores).
    THREADS = a.threads
    res = [bench("stories260K-shape", STORIES, a.steps), bench("smollm2-135m-4l", SMOLLM2_4L, a.steps)]
    print(json.dumps({"torch": torch.__version__, "results": res}) if a.json else "\n".join(map(str, res)))
