"""Our GGUF export read by others, for `tests/hf_reference/gguf_export.rs`.

Exports the committed tiny Llama-family models with our own binary, as the Rust test does, then
reads each file with outside code and records what it saw in `gguf_export/readers.json`:

- the Python `gguf` package (llama.cpp's gguf-py, the converter's own reader): the metadata
  llama.cpp loads by, every tensor's name, ggml type, shape and a checksum of its dequantised
  values in file order (see `checksum`), and for the f32 `llama` file the
  q/k rows, which must be the fixture's `q_proj`/`k_proj` reordered by llama.cpp's converter
  (`LlamaModel.permute` from convert_hf_to_gguf.py, quoted below);
- `transformers` (`AutoModelForCausalLM.from_pretrained(dir, gguf_file=...)`, which dequantises
  and undoes the permutation itself): its logits for fixed ids must equal the logits
  `transformers` computes from the fixture's own safetensors (checked here), and are saved, the
  first 64 vocabulary ids per position, for the Rust test to compare ours with.

- llama.cpp itself (the `llama-cpp-python` package, which builds llama.cpp from source): it
  loads each file, and its logits for the same ids are saved beside `transformers'`; its
  tokenizer must split a few texts as our `tokenizer.json` does (their ids are saved too).

Cases: `llama/llama` without its Llama 3 rotary scaling (GGUF has no key for it: the export
refuses it) as f32 and q8_0 (untied head, grouped-query attention, permuted q/k; its 48-wide
`ffn_down` rows fall back to F16 as in llama.cpp's converter), `llama/qwen2` as f16 (q/k/v
biases, tied head: written as `qwen2`).

Run from the repository root after `cargo build --release` (needs torch, transformers, gguf,
llama-cpp-python; RLHF_BIN overrides the binary; building llama-cpp-python takes ~25 minutes on
two cores, less with `CMAKE_ARGS="-DLLAVA_BUILD=OFF -DLLAMA_BUILD_TOOLS=OFF"`):

    python tests/hf_reference/make_gguf_export_reference.py

The tokenizer is the tests' (`common::tok()`: 512 tokens trained on the first 300,000
characters of Emma), trained here with `rlhf tokenizer train`; the logits depend only on the ids
and the weights.
"""

import importlib.metadata
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


TEXTS = ["Emma Woodhouse, handsome, clever, and rich<|endoftext|> 1816\n", "  a  b\n\nc's"]


def llama_cpp_view(path, ids, tokenizer):
    """llama.cpp's logits for `ids` from the file, and its ids for TEXTS (checked against ours)."""
    import llama_cpp.llama_cpp as raw
    from llama_cpp import Llama
    from tokenizers import Tokenizer

    defaults = raw.llama_model_default_params

    def no_repack():
        # llama.cpp repacks Q8_0 for AMX on CPUs that have it, and that crashed in a VM: the
        # plain CPU kernels compute the same function
        p = defaults()
        p.use_extra_bufts = False
        return p

    raw.llama_model_default_params = no_repack
    m = Llama(
        model_path=str(path),
        n_ctx=64,
        logits_all=True,
        verbose=False,
        type_k=0,  # f32 KV cache: no rounding of keys and values to f16
        type_v=0,
    )
    m.eval(ids)
    logits = np.array(m.scores[: len(ids)])
    ours = Tokenizer.from_file(str(tokenizer))
    tokens = []
    for text in TEXTS:
        theirs = m.tokenize(text.encode(), add_bos=False, special=True)
        assert theirs == ours.encode(text, add_special_tokens=False).ids, text
        tokens.append(theirs)
    raw.llama_model_default_params = defaults
    return logits, tokens


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
            lc, tokens = llama_cpp_view(tmp / name, ids, ckpt / "tokenizer.json")
            lc_diff = np.abs(lc[:, :COLS] - got[:, :COLS].numpy()).max()
            print(f"  llama.cpp: max |llama.cpp - transformers| = {lc_diff:.2e}")
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
                    "llama_cpp_logits": [
                        [round(float(v), 6) for v in row] for row in lc[:, :COLS]
                    ],
                    "llama_cpp_tokens": tokens,
                }
            )
    dest = HERE / "gguf_export"
    dest.mkdir(exist_ok=True)
    (dest / "readers.json").write_text(
        json.dumps(
            {
                "transformers": transformers.__version__,
                "llama_cpp_python": importlib.metadata.version("llama-cpp-python"),
                "texts": TEXTS,
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
