"""Reference logits from Hugging Face `transformers` for `tests/hf.rs` (issue 19).

The export -> import round trip in `tests/hf.rs` compares our code with itself: a tensor
transposed the same wrong way in both directions passes. This script builds a small GPT-2 with
`transformers` itself, saves it as `transformers` saves any GPT-2 (`model/config.json` +
`model/model.safetensors`) and writes the logits `transformers` computes for fixed input ids to
`logits.json`. The Rust test imports `model/`, compares its logits with these, and exports the
imported model again to check the tensors come back as this file holds them.

Run from the repository root (needs torch and transformers; CPU is enough, the outputs are
float32 and deterministic):

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
  whose error could hide.
"""

import json
import pathlib

import torch
import transformers
from transformers import GPT2Config, GPT2LMHeadModel

HERE = pathlib.Path(__file__).resolve().parent
SEED = 19  # the number
N_IDS = 24

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

meta = {
    "about": "logits[t][v] of tests/hf_reference/model for input_ids, computed by "
    "transformers (GPT2LMHeadModel, float32, CPU) in make_reference.py; rounded to 1e-6",
    "transformers": transformers.__version__,
    "torch": torch.__version__,
    "seed": SEED,
    "input_ids": ids[0].tolist(),
    "shape": list(logits.shape),
}
# one field, and one row of logits, per line: a regenerated file diffs row by row
meta["logits"] = [[round(v, 6) for v in row] for row in logits.tolist()]
fields = [f"{json.dumps(k)}: {json.dumps(v)}" for k, v in meta.items() if k != "logits"]
rows = ",\n".join(json.dumps(row) for row in meta["logits"])
text = "{\n" + ",\n".join(fields) + ',\n"logits": [\n' + rows + "\n]\n}\n"
assert json.loads(text) == meta
(HERE / "logits.json").write_text(text)
print(f"wrote {HERE / 'model'} and logits.json: logits {list(logits.shape)}, "
      f"max |logit| {logits.abs().max().item():.3f}")
