"""The PyTorch side of `rlhf bench train`: the same GPT-2 model, shapes and optimizer step on
random tokens, timed the same way (3 warm-up steps, then the mean over --steps), printed as one
JSON line. Not part of the build or the tests; see bench/README.md.

Model: pre-LayerNorm GPT-2 (learned positions, tanh GELU, tied embeddings, biases), causal
attention through scaled_dot_product_attention, dropout as the preset says, AdamW (betas 0.9,
0.95, weight decay 0.1, lr 1e-4), global-norm clipping at 1.0, eager mode on the CPU.
"""

import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

PRESETS = {
    "tiny": dict(n_layer=2, n_embd=64, n_head=4, n_ctx=64, dropout=0.0),
    "small": dict(n_layer=4, n_embd=128, n_head=4, n_ctx=128, dropout=0.1),
    "base": dict(n_layer=6, n_embd=384, n_head=6, n_ctx=256, dropout=0.1),
}


class Block(nn.Module):
    def __init__(self, c, nh, p):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(c), nn.LayerNorm(c)
        self.c_attn, self.c_proj = nn.Linear(c, 3 * c), nn.Linear(c, c)
        self.c_fc, self.mlp_proj = nn.Linear(c, 4 * c), nn.Linear(4 * c, c)
        self.nh, self.p = nh, p
        self.drop = nn.Dropout(p)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(c, dim=2)
        heads = lambda z: z.view(b, t, self.nh, c // self.nh).transpose(1, 2)  # (B, nh, T, hs)
        y = F.scaled_dot_product_attention(heads(q), heads(k), heads(v), is_causal=True)
        x = x + self.drop(self.c_proj(y.transpose(1, 2).reshape(b, t, c)))
        h = F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh")
        return x + self.drop(self.mlp_proj(h))


class Gpt(nn.Module):
    def __init__(self, vocab, n_layer, n_embd, n_head, n_ctx, dropout):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, n_embd), nn.Embedding(n_ctx, n_embd)
        self.drop = nn.Dropout(dropout)
        self.h = nn.ModuleList(Block(n_embd, n_head, dropout) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd)

    def forward(self, idx, targets):
        t = idx.shape[1]
        x = self.drop(self.wte(idx) + self.wpe(torch.arange(t)))
        for blk in self.h:
            x = blk(x)
        logits = self.ln_f(x) @ self.wte.weight.T  # (B, T, V), tied
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="small", choices=PRESETS)
    ap.add_argument("--vocab-size", type=int, default=2048)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    cfg = PRESETS[a.preset]
    model = Gpt(a.vocab_size, **cfg).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1)
    b, t = a.batch_size, cfg["n_ctx"]

    def step():
        x = torch.randint(a.vocab_size, (b, t))
        y = torch.randint(a.vocab_size, (b, t))
        loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    for _ in range(3):
        step()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    secs = time.perf_counter() - t0
    print(json.dumps({
        "bench": "train", "impl": f"pytorch {torch.__version__} eager, {a.threads} threads",
        "preset": a.preset, "layers": cfg["n_layer"], "width": cfg["n_embd"], "ctx": t,
        "batch": b, "train_tokens_per_s": round(a.steps * b * t / secs),
    }))


if __name__ == "__main__":
    main()
