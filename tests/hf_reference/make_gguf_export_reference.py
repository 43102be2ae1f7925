"""Our GGUF export read by others, for `tests/hf_reference/gguf_export.rs`.

Exports the committed tiny Llama-family models with our own binary, as the Rust test does, then
reads each file with outside code and records what it saw in `gguf_export/transformers.json`:

- the Python `gguf` package (llama.cpp's gguf-py, the converter's own reader): the metadata
  llama.cpp loads by, every tensor's name, ggml type, shape and a checksum of its dequantised
  values in file order (see `checksum`), and for the f32 `llama` file the
  q/k rows, which must be the fixture's `q_proj`/`k_proj` reordered by llama.cpp's converter
  (`LlamaModel.permute` from convert_hf_to_gguf.py, quoted below);
- `transformers` (`AutoModelForCausalLM.from_pretrained(dir, gguf_file=...)`, which dequantises
  and undoes the permutation itself): its logits for fixed ids must equal the logits
  `transformers` computes from the fixture's own safetensors (checked here), and are saved, the
  first 64 vocabulary ids per position, for the Rust test to compare ours with.

Cases: `llama/llama` without its Llama 3 rotary scaling (GGUF has no key for it: the export
refuses it) as f32 and q8_0 (untied head, grouped-query attention, permuted q/k; its 48-wide
`ffn_down` rows fall back to F16 as in llama.cpp's converter), `llama/qwen2` as f16 (q/k/v
biases, tied head: written as `qwen2`).

Run from the repository root after `cargo build --release` (needs torch, transformers, gguf;
RLHF_BIN overrides the binary):

    python tests/hf_reference/make_gguf_export_reference.py

The tokenizer is the tests' (`common::tok()`: 512 tokens trained on the first 300,000
characters of Emma), trained here with `rlhf tokenizer train`; the logits depend only on the ids
and the weights.
"""

import json
import os
import pathlib
import shutil
import subprocess
import tempfile

import gguf
import numpy as np
import torch
import transformers
from safetensors.numpy import load_file
from transformers import AutoModelForCausalLM

ROOT = pathlib.Path(__file__).resolve().parents[2]
HERE = ROOT / "tests/hf_reference"
BIN = os.environ.get("RLHF_BIN", str(ROOT / "target/release/rlhf"))
CASES = [("llama", "f32"), ("llama", "q8_0"), ("qwen2", "f16")]
COLS = 64


def rlhf(*args):
    subprocess.run([BIN, *map(str, args)], check=True)


def permute(weights, n_head, n_head_kv):
    """convert_hf_to_gguf.py, `LlamaModel.permute` (llama.cpp, unchanged since 2023)."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (
        weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def hf_dir(tmp, family, tokenizer):
    """The fixture as a Hugging Face directory, with the tests' tokenizer and, for the Llama,
    the default rotation (as the Rust test writes it)."""
    hf = tmp / f"hf-{family}"
    if hf.exists():
        return hf
    shutil.copytree(HERE / "llama" / family, hf)
    shutil.copy(tokenizer, hf / "tokenizer.json")
    if family == "llama":
        cfg = json.loads((hf / "config.json").read_text())
        cfg["rope_parameters"] = {"rope_theta": 10000.0, "rope_type": "default"}
        (hf / "config.json").write_text(json.dumps(cfg))
    return hf


def checksum(t):
    """Sum of the dequantised values in file order, the i-th weighted by 1 + i % 97: pins the
    values and their order (rows swapped or left unpermuted change it)."""
    v = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float64).ravel()
    return float((v * (1 + np.arange(v.size) % 97)).sum())


def gguf_view(path, hf):
    """What gguf-py reads: keys, tensors, and the converter's q/k order checked."""
    r = gguf.GGUFReader(path)
    arch = r.fields["general.architecture"].contents()
    keys = {
        k: r.fields[k].contents()
        for k in r.fields
        if k.startswith(arch + ".")
        or k in ("general.file_type", "tokenizer.ggml.model", "tokenizer.ggml.pre")
    }
    tensors = [
        [t.name, t.tensor_type.name, [int(d) for d in t.shape], checksum(t)] for t in r.tensors
    ]
    cfg = json.loads((hf / "config.json").read_text())
    if arch == "llama" and r.fields["general.file_type"].contents() == 0:
        theirs = load_file(hf / "model.safetensors")
        by_name = {t.name: t for t in r.tensors}
        for i in range(cfg["num_hidden_layers"]):
            for p, kv in (("q", None), ("k", cfg["num_key_value_heads"])):
                w = theirs[f"model.layers.{i}.self_attn.{p}_proj.weight"]
                want = permute(w, cfg["num_attention_heads"], kv)
                got = np.asarray(by_name[f"blk.{i}.attn_{p}.weight"].data).reshape(w.shape)
                assert np.array_equal(got, want), f"blk.{i}.attn_{p}: not the converter's order"
    return arch, keys, tensors


def main():
    ids = json.loads((HERE / "llama/llama/logits.json").read_text())["ids"]
    x = torch.tensor([ids])
    out = []
    with tempfile.TemporaryDirectory() as t:
        tmp = pathlib.Path(t)
        head = tmp / "emma_head.txt"
        text = (ROOT / "assets/austen/emma.txt").read_text(encoding="utf-8")
        head.write_text(text[:300_000], encoding="utf-8")
        tok = tmp / "tokenizer.json"
        rlhf("tokenizer", "train", "--corpus", head, "--vocab-size", 512, "--out", tok)
        for family, ty in CASES:
            hf = hf_dir(tmp, family, tok)
            ckpt = tmp / f"ckpt-{family}-{ty}"
            if not ckpt.exists():
                rlhf("import-hf", "--dir", hf, "--out", ckpt)
            name = f"{family}-{ty}.gguf"
            rlhf("export", "--ckpt", ckpt, "--out", tmp / name, "--gguf-type", ty)
            arch, keys, tensors = gguf_view(tmp / name, hf)
            with torch.no_grad():
                ref = AutoModelForCausalLM.from_pretrained(hf, dtype=torch.float32).eval()
                want = ref(x).logits[0]
                m = AutoModelForCausalLM.from_pretrained(
                    tmp, gguf_file=name, dtype=torch.float32
                ).eval()
                got = m(x).logits[0]
            diff = (got - want).abs().max().item()
            print(f"{family} {ty}: {arch}, max |gguf - safetensors| (transformers) = {diff:.2e}")
            if ty == "f32":
                assert diff < 1e-5, diff
            cols = got[:, :COLS]
            out.append(
                {
                    "family": family,
                    "gguf_type": ty,
                    "architecture": arch,
                    "keys": {k: v for k, v in keys.items()},
                    "tensors": tensors,
                    "max_diff_from_safetensors": diff,
                    "logits": [[round(v, 6) for v in row] for row in cols.tolist()],
                }
            )
    dest = HERE / "gguf_export"
    dest.mkdir(exist_ok=True)
    (dest / "transformers.json").write_text(
        json.dumps(
            {
                "transformers": transformers.__version__,
                "ids": ids,
                "cols": COLS,
                "cases": out,
            },
            indent=1,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
