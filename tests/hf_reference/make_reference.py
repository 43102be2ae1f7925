"""Reference logits from Hugging Face `transformers` for `tests/model/hf.rs`.

The export -> import round trip in `tests/model/hf.rs` compares our code with itself: a tensor
transposed the same wrong way in both directions passes. This script builds a small GPT-2 with
`transformers` itself, saves it as `transformers` saves any GPT-2 (`model/config.json` +
`model/model.safetensors`) and writes the logits `transformers` computes for fixed input ids to
`logits.json`. The Rust test imports `model/`, compares its logits with these, and exports the
imported model again to check the tensors come back as this file holds them.

The same model is also rounded to float16 and to bfloat16 and saved by `save_pretrained` again,
as half-precision checkpoints on the hub are: `model_f16/` in one `model.safetensors`,
`model_bf16_sharded/` cut into three shards with the `model.safetensors.index.json`
`transformers` writes for them. `logits_f16.json` and `logits_bf16.json` hold the logits
`transformers` computes from each directory loaded back as float32, so the reference for an
import that widens F16/BF16 to f32 is the half model's own f32 logits, not the f32 model's
(rounding moves the logits by up to 0.004 for F16 and 0.04 for BF16, 40x and 400x the tests'
tolerance).

Run from the repository root (needs torch, transformers and safetensors; CPU is enough, the
outputs are float32 and deterministic):

    python tests/hf_reference/make_reference.py

Choices, and why:
- n_embd 32, n_head 4, n_layer 2, n_positions 40, vocab 512: small enough to commit (~180 KB),
  and as few square matrices as possible, so a transposed tensor mostly fails the shape check
  and otherwise changes the logits: only attn.c_proj is square (C x C); wpe is 40 x 32, not
  square. Four heads of 8 make a wrong head split or a 1/sqrt(C) instead of 1/sqrt(hs) scale
  visible. vocab 512 is the size of the tests' tokenizer (`common::tok()`), whose
  `<|endoftext|>` is id 0.
- Weights are not GPT-2's init (N(0, 0.02), zero biases, unit gains): with that init most
  blocks barely change the residual stream and a mishandled bias or gain would not show. Here
  every matrix is N(0, 1/fan_in) so each layer moves its input by O(1), and every bias and
  LayerNorm gain/shift is a distinct random value.
- The full 24 x 512 logit matrix is stored (12288 values, ~130 KB as JSON), rounded to 1e-6:
  the rounding is far below the test's 1e-4 tolerance, and storing everything leaves no column
  whose error could hide. The same holds for the two half-precision references.
- Half precision as two directories, not four: F16 unsharded and BF16 sharded cover both
  dtypes and the index, at ~90 KB of weights each. 40 KB shards give three, so an import that
  read only the first or only the last shard would miss tensors.
"""

import copy
import json
import pathlib
import shutil

import torch
import transformers
from safetensors import safe_open
from transformers import GPT2Config, GPT2LMHeadModel

HERE = pathlib.Path(__file__).resolve().parent
SEED = 19  # fixed: the committed fixtures were made with it
N_IDS = 24
# the dtype names safetensors gives each torch dtype
DTYPE_TAG = {torch.float16: "F16", torch.bfloat16: "BF16"}

torch.manual_seed(SEED)
config = GPT2Config(
    vocab_size=512,
    n_positions=40,
    n_embd=32,
    n_layer=2,
    n_head=4,
    activation_function="gelu_new",
    layer_norm_epsilon=1e-5,
    tie_word_embeddings=True,
    resid_pdrop=0.0,
    embd_pdrop=0.0,
    attn_pdrop=0.0,
    bos_token_id=0,
    eos_token_id=0,
)
model = GPT2LMHeadModel(config).eval()

with torch.no_grad():
    for name, p in model.named_parameters():
        if name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")):
            p.copy_(1.0 + 0.3 * torch.randn_like(p))  # gains around 1, none equal
        elif p.dim() == 1:
            p.copy_(0.2 * torch.randn_like(p))  # every bias and LayerNorm shift non-zero
        elif name.endswith(("wte.weight", "wpe.weight")):
            p.copy_(0.3 * torch.randn_like(p))  # logits h.w with |h|^2 ~ 32: std ~1.7
        else:
            # Conv1D weights are [in, out]: fan_in is the first dimension
            p.copy_(torch.randn_like(p) / p.shape[0] ** 0.5)

ids = torch.randint(0, config.vocab_size, (1, N_IDS), generator=torch.Generator().manual_seed(SEED))
with torch.no_grad():
    logits = model(ids).logits[0].to(torch.float32)  # (T, V)

model.save_pretrained(HERE / "model", safe_serialization=True)
# generation_config.json is not needed by the test; keep the committed directory minimal
(HERE / "model" / "generation_config.json").unlink(missing_ok=True)
# the file must be the model the logits came from (nothing dropped or re-tied on saving)
reloaded = GPT2LMHeadModel.from_pretrained(HERE / "model").eval()
with torch.no_grad():
    assert torch.equal(reloaded(ids).logits[0], logits), "saved model differs"


def logits_text(logits, about):
    """logits.json's layout: one field, and one row of logits, per line (a regenerated file
    diffs row by row); logits rounded to 1e-6."""
    meta = {
        "about": about,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "seed": SEED,
        "input_ids": ids[0].tolist(),
        "shape": list(logits.shape),
    }
    meta["logits"] = [[round(v, 6) for v in row] for row in logits.tolist()]
    fields = [f"{json.dumps(k)}: {json.dumps(v)}" for k, v in meta.items() if k != "logits"]
    rows = ",\n".join(json.dumps(row) for row in meta["logits"])
    text = "{\n" + ",\n".join(fields) + ',\n"logits": [\n' + rows + "\n]\n}\n"
    assert json.loads(text) == meta
    return text


def write_logits(path, logits, about):
    """Writes the logits unless the committed file already holds them to within 1e-5: CPUs sum
    the float32 matmuls in different orders (SIMD width, blocking), which moves logits by up to
    ~2e-6 with the same weights (2.3e-6 between the committed logits.json and a rerun on a
    2-core x86 machine), and rewriting for that only churns the fixture. 1e-5 is a tenth of the
    Rust tests' tolerance; a changed weight moves logits by O(1)."""
    if path.exists():
        old = torch.tensor(json.loads(path.read_text())["logits"])
        if old.shape == logits.shape and (old - logits).abs().max().item() < 1e-5:
            print(f"kept {path.name}: its logits equal these to within 1e-5")
            return
    path.write_text(logits_text(logits, about))
    print(f"wrote {path.name}")


write_logits(
    HERE / "logits.json",
    logits,
    "logits[t][v] of tests/hf_reference/model for input_ids, computed by "
    "transformers (GPT2LMHeadModel, float32, CPU) in make_reference.py; rounded to 1e-6",
)
print(f"wrote {HERE / 'model'}: logits {list(logits.shape)}, "
      f"max |logit| {logits.abs().max().item():.3f}")


def save_half(dtype, name, **save_kwargs):
    """The same model rounded to `dtype` and saved by `save_pretrained` into `name/`, and the
    logits transformers computes from that directory loaded back as float32."""
    out = HERE / name
    shutil.rmtree(out, ignore_errors=True)
    copy.deepcopy(model).to(dtype).save_pretrained(out, **save_kwargs)
    (out / "generation_config.json").unlink(missing_ok=True)
    files = sorted(out.glob("*.safetensors"))
    for f in files:
        with safe_open(f, "pt") as st:
            for k in st.keys():
                assert st.get_slice(k).get_dtype() == DTYPE_TAG[dtype], f"{f.name}: {k}"
    # transformers reading the half file is the reference: its float32 weights must be the f32
    # model's rounded to nearest even and widened, exactly
    wide = GPT2LMHeadModel.from_pretrained(out, dtype=torch.float32).eval()
    for (n, p), (m, q) in zip(model.named_parameters(), wide.named_parameters()):
        assert n == m and q.dtype == torch.float32
        assert torch.equal(p.to(dtype).to(torch.float32), q), n
    with torch.no_grad():
        half_logits = wide(ids).logits[0]
    shift = (half_logits - logits).abs().max().item()
    print(f"wrote {out.name}: {[f.name for f in files]}, max |logit - f32 logit| {shift:.4f}")
    return half_logits, len(files)


f16_logits, _ = save_half(torch.float16, "model_f16")
write_logits(
    HERE / "logits_f16.json",
    f16_logits,
    "logits[t][v] of tests/hf_reference/model_f16 (the float32 model rounded to float16 and "
    "saved by save_pretrained) for input_ids, computed by transformers from that directory "
    "loaded as float32 (CPU) in make_reference.py; rounded to 1e-6",
)
bf16_logits, shards = save_half(torch.bfloat16, "model_bf16_sharded", max_shard_size="40KB")
assert shards >= 2, shards
write_logits(
    HERE / "logits_bf16.json",
    bf16_logits,
    "logits[t][v] of tests/hf_reference/model_bf16_sharded (the float32 model rounded to "
    "bfloat16 and saved by save_pretrained in 40 KB shards) for input_ids, computed by "
    "transformers from that directory loaded as float32 (CPU) in make_reference.py; rounded "
    "to 1e-6",
)
