"""Reference logits from Hugging Face `transformers` for the Llama family (`tests/model/llama.rs`).

Builds two tiny random decoders with `transformers` itself and saves each as `save_pretrained`
saves any checkpoint (`config.json` + `model.safetensors`), with the logits `transformers`
computes for fixed input ids:

- `llama/llama/`: `LlamaForCausalLM` with grouped-query attention (4 query heads, 2 key/value
  heads), Llama 3's rotary scaling (`rope_type = "llama3"`, an original context of 16 so the
  scaling changes the angles of a 24-token input) and an untied `lm_head`;
- `llama/qwen2/`: `Qwen2ForCausalLM` (q/k/v biases, tied embeddings, rope_theta 1e6).

`logits.json` in each holds `ids` (one unpadded row) and the full (T, V) logit matrix, plus a
left-padded batch (`padded_ids`, `padded_mask`, `padded_logits`: the logits at the real tokens
only, of the first 64 vocabulary ids) so an import that rotated padded rows by the wrong
positions would fail.

Run from the repository root (needs torch and transformers; CPU is enough, float32 and
deterministic):

    python tests/hf_reference/make_llama_reference.py

Choices, and why:
- hidden 32, 4 heads of 8, 2 key/value heads, 2 layers, MLP 48, vocab 512 (the tests'
  tokenizer, `common::tok()`): small enough to commit (~150 KB per model) with no square
  matrix but q_proj and o_proj, so a transposed weight mostly fails the shape check.
- Weights are N(0, 1/fan_in) and every norm weight and bias a distinct random value, not the
  init (N(0, 0.02), unit norms, zero biases): with that init a mishandled norm, bias or
  rotation barely moves the logits.
- Logits rounded to 1e-5, ten times under the tests' 1e-4 tolerance.
- transformers 5 keeps `rope_theta` inside `rope_parameters`; the import reads either place.
"""

import json
import pathlib
import shutil

import torch
import transformers
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

HERE = pathlib.Path(__file__).resolve().parent / "llama"
SEED = 23  # fixed: the committed fixtures were made with it
VOCAB = 512
T = 24


def randomise(model):
    """Every matrix N(0, 1/fan_in); every vector (norm weights, biases) a distinct value."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2:
                p.normal_(0.0, 1.0 / p.shape[1] ** 0.5)
            elif name.endswith("norm.weight") or "layernorm" in name:
                p.uniform_(0.5, 1.5)
            else:
                p.normal_(0.0, 0.5)


def logits_of(model, ids, mask=None):
    with torch.no_grad():
        if mask is None:
            return model(ids).logits
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        return model(ids, attention_mask=mask, position_ids=pos).logits


def save(name, model):
    out = HERE / name
    if out.exists():
        shutil.rmtree(out)
    model.save_pretrained(out, safe_serialization=True)
    gen = torch.Generator().manual_seed(SEED + 1)
    ids = torch.randint(0, VOCAB, (1, T), generator=gen)
    # two rows, left-padded: row 0 has 5 padding tokens, row 1 none
    padded = torch.randint(0, VOCAB, (2, T), generator=gen)
    mask = torch.ones(2, T, dtype=torch.long)
    mask[0, :5] = 0
    padded[0, :5] = 0
    full = logits_of(model, ids)[0]
    pad_logits = logits_of(model, padded, mask)
    real = [pad_logits[b][mask[b].bool()][:, :64].tolist() for b in range(2)]
    rnd = lambda rows: [[round(x, 5) for x in r] for r in rows]
    ref = {
        "transformers": transformers.__version__,
        "ids": ids[0].tolist(),
        "logits": rnd(full.tolist()),
        "padded_ids": padded.tolist(),
        "padded_mask": mask.tolist(),
        "padded_logits": [rnd(r) for r in real],
    }
    (out / "logits.json").write_text(json.dumps(ref))
    print(name, "->", out, sum(p.numel() for p in model.parameters()), "parameters")


torch.manual_seed(SEED)
common = dict(
    vocab_size=VOCAB,
    hidden_size=32,
    intermediate_size=48,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=64,
    rms_norm_eps=1e-5,
)
llama = LlamaForCausalLM(
    LlamaConfig(
        **common,
        tie_word_embeddings=False,
        rope_theta=10000.0,
        rope_scaling={
            "rope_type": "llama3",
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 16,
        },
    )
).eval()
randomise(llama)
save("llama", llama)

qwen = Qwen2ForCausalLM(Qwen2Config(**common, tie_word_embeddings=True, rope_theta=1e6)).eval()
randomise(qwen)
save("qwen2", qwen)
