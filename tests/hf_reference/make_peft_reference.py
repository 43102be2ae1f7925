"""LoRA adapters made and saved by Hugging Face PEFT itself, for `tests/hf_reference/peft.rs`.

Wraps two committed `transformers` fixtures in PEFT LoRA adapters and saves each adapter as
`PeftModel.save_pretrained` saves any (`adapter_config.json` + `adapter_model.safetensors`),
with the logits the adapted model computes for fixed input ids:

- `peft/llama/`: the tiny `LlamaForCausalLM` of `llama/llama/` (`make_llama_reference.py`),
  adapters on q_proj, v_proj, o_proj, gate_proj and down_proj (`nn.Linear`: fan_in_fan_out
  false);
- `peft/gpt2/`: the tiny GPT-2 of `model/` (`make_reference.py`), adapters on the fused
  c_attn and on mlp.c_proj (GPT-2's `Conv1D`, weight `[in, out]`: fan_in_fan_out true; the
  adapters' own `lora_A.weight` (r, in) and `lora_B.weight` (out, r) are `nn.Linear`s all the
  same).

`logits.json` in each holds `ids` and the adapted model's full (T, V) logits, and `base_shift`,
the largest change the adapters make to a logit (so a reader that dropped them is caught).

Run from the repository root (needs torch, transformers and peft; CPU, float32,
deterministic):

    python tests/hf_reference/make_peft_reference.py

and, to check that PEFT loads an adapter `rlhf export-peft` wrote (the real `peft`, not our
reader) and computes the fixture's logits with it:

    python tests/hf_reference/make_peft_reference.py --check OUT_DIR --family llama

(`--merged HF_DIR`: against the logits of that model, e.g. adapters trained here on the
fixture's imported base, folded in by `rlhf merge` and written by `rlhf export-hf`.)

Choices, and why:
- r = 4, lora_alpha = 8 (scale 2, not 1, so a scale of α or of 1 shows), lora_dropout 0.05
  (carried in the config; off at inference). `init_lora_weights=False` leaves A and B at
  `nn.Linear`'s init (uniform in ±1/√fan_in) instead of B = 0, so every adapter changes the
  logits; the default init would make the adapted model the base model.
- Not every layer is adapted (k_proj, up_proj and GPT-2's attn.c_proj, c_fc are left out), so
  an import that adapted every layer, or mapped targets to the wrong layers, is caught.
  `mlp.c_proj` is named with its parent: PEFT matches a target as a suffix of the module's
  name, and `c_proj` alone would also take `attn.c_proj`.
- The base model path is given relative to the repository root, so `adapter_config.json`
  names no machine's directories.
- Logits rounded to 1e-5, ten times under the tests' 1e-4 tolerance; T = 16 keeps each file
  near 90 KB.
"""

import argparse
import json
import pathlib
import shutil

import peft
import torch
import transformers
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForCausalLM

ROOT = pathlib.Path(__file__).resolve().parent
SEED = 29  # fixed: the committed fixtures were made with it
VOCAB = 512
T = 16
FAMILIES = {
    "llama": (
        "tests/hf_reference/llama/llama",
        ["q_proj", "v_proj", "o_proj", "gate_proj", "down_proj"],
    ),
    "gpt2": ("tests/hf_reference/model", ["c_attn", "mlp.c_proj"]),
}


def base_model(family):
    path, _ = FAMILIES[family]
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()


def logits_of(model, ids):
    with torch.no_grad():
        return model(ids).logits[0]


def make(family):
    path, targets = FAMILIES[family]
    torch.manual_seed(SEED)
    base = base_model(family)
    ids = torch.randint(0, VOCAB, (1, T), generator=torch.Generator().manual_seed(SEED + 1))
    before = logits_of(base, ids)
    cfg = LoraConfig(
        r=4,
        lora_alpha=8,
        lora_dropout=0.05,
        target_modules=targets,
        init_lora_weights=False,
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(base, cfg).eval()
    after = logits_of(model, ids)
    out = ROOT / "peft" / family
    if out.exists():
        shutil.rmtree(out)
    model.save_pretrained(out)
    (out / "README.md").unlink()  # PEFT's blank model card: nothing the tests read
    ref = {
        "about": f"logits of {path} with the PEFT adapter beside this file, by "
        "make_peft_reference.py; rounded to 1e-5",
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "torch": torch.__version__,
        "seed": SEED,
        "ids": ids[0].tolist(),
        "base_shift": round((after - before).abs().max().item(), 5),
        "logits": [[round(x, 5) for x in row] for row in after.tolist()],
    }
    (out / "logits.json").write_text(json.dumps(ref))
    print(family, "->", out, "adapters move a logit by up to", ref["base_shift"])


def check(family, adapter_dir, merged):
    """PEFT loads `adapter_dir` onto the family's base; prints max |its logits - the
    reference's|: the fixture's logits, or with `merged` those `transformers` computes for that
    model directory (`rlhf merge` then `rlhf export-hf` of the checkpoint exported)."""
    ref = json.loads((ROOT / "peft" / family / "logits.json").read_text())
    ids = torch.tensor([ref["ids"]])
    if merged:
        want = logits_of(AutoModelForCausalLM.from_pretrained(merged).eval(), ids)
    else:
        want = torch.tensor(ref["logits"])
    model = PeftModel.from_pretrained(base_model(family), adapter_dir).eval()
    got = logits_of(model, ids)
    n = sum(p.numel() for name, p in model.named_parameters() if "lora_" in name)
    print(f"{family}: PEFT loaded {adapter_dir} ({n} adapter parameters)")
    what = merged or "the fixture"
    base = logits_of(base_model(family), ids)
    print(f"max |PEFT(adapter) - {what}| = {(got - want).abs().max().item():.3e}")
    print(f"max |base - {what}| = {(base - want).abs().max().item():.3e}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", metavar="DIR", help="an adapter directory for PEFT to load")
    ap.add_argument("--family", choices=sorted(FAMILIES), default="llama")
    ap.add_argument("--merged", metavar="HF_DIR", help="--check against this model's logits")
    a = ap.parse_args()
    if a.check:
        check(a.family, a.check, a.merged)
    else:
        for f in FAMILIES:
            make(f)
