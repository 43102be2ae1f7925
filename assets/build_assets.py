#!/usr/bin/env python3
"""Builds the bundled JSONL data from the raw texts in this folder (run once; output committed).

  python3 assets/build_assets.py

Deterministic (fixed seed). Writes:
  sft.jsonl           SFT demonstrations: "Define: X" -> Bierce's entry, "Continue: <opening>" -> Austen's next sentences
  prompts.jsonl       PPO / RM prompts, disjoint from the SFT prompts (same two kinds)
  eval_prompts.jsonl  held-out prompts: unused dictionary terms and openings from the held-out novel
  devils_dictionary.jsonl  Bierce's entries from shared/data, screened
Each of the three also holds short conversations in the messages format: consecutive quoted
utterances of Austen's characters, the speakers taking turns (a new paragraph is a new speaker),
as user and assistant turns.
Held-out novel (never trained on): austen/persuasion.txt.
Every record of the four files is screened against screen/blocklist.txt (slurs; its header says how
words are matched, and tests/data/assets.rs matches them the same way): a record that matches is left
out. The records are drawn from the whole dictionary and then screened, so that screening one drops
just that record and leaves the draw of all the others as it was.
"""
import json, random, re, pathlib

HERE = pathlib.Path(__file__).resolve().parent
# the raw dictionary, unscreened: the draw below is made from all of its entries
RAW_DICTIONARY = HERE.parent.parent / "shared" / "data" / "devils_dictionary.jsonl"
HELD_OUT = "persuasion.txt"
ABBREV = re.compile(r"\b(Mr|Mrs|Dr|St|Col|Capt|Sir)\.$")
rng = random.Random(1234)


WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")  # runs of letters, joined by single hyphens


def blocklist():
    """Every form the screen flags: each listed word and its plain plurals, lower case."""
    forms = set()
    for line in (HERE / "screen" / "blocklist.txt").read_text(encoding="utf-8").splitlines():
        w = line.strip()
        if not w or w.startswith("#"):
            continue
        forms |= {w, w + "s", w + "es"} | ({w[:-1] + "ies"} if w.endswith("y") else set())
    return forms


BLOCKED = blocklist()


def flagged(text):
    """The words of `text` the screen flags: whole words, and hyphenated compounds unhyphenated."""
    out = []
    for m in WORD.finditer(text):
        parts = m.group().split("-")
        for w in parts + (["".join(parts)] if len(parts) > 1 else []):
            if w.lower() in BLOCKED:
                out.append(w)
    return out


def strings(value):
    """The string values of a JSON record (its keys are ours, never text shown to anyone)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def passes(record):
    return not any(flagged(s) for s in strings(record))


def sentences(par):
    out, cur = [], ""
    for piece in re.split(r"(?<=[.!?])\s+", par):
        cur = f"{cur} {piece}".strip()
        if not ABBREV.search(cur):
            out.append(cur)
            cur = ""
    if cur:
        out.append(cur)
    return out


def paragraphs(path):
    text = path.read_text(encoding="utf-8")
    for par in re.split(r"\n\s*\n", text):
        par = " ".join(par.split()).replace("_", "")
        if len(par) < 120 or par.isupper():
            continue
        yield par


def continuation(par, max_prompt=160, max_resp=200):
    s = sentences(par)
    if len(s) < 2:
        return None
    k = 1 if len(s[0]) > 60 or len(s) < 3 else 2
    prompt, rest = " ".join(s[:k]), s[k:]
    if len(prompt) > max_prompt or not rest or len(rest[0]) > max_resp:
        return None
    resp = rest[0]
    if len(rest) > 1 and len(resp) + len(rest[1]) < max_resp:
        resp += " " + rest[1]
    return prompt, resp


def definition(entry, max_len=240):
    d = entry["definition"].split("\n\n")[0].strip()
    d = " ".join(d.split())
    if len(d) > max_len:
        s = sentences(d)
        d = s[0] if len(s[0]) <= max_len else d[:max_len].rsplit(" ", 1)[0] + "..."
    return d


QUOTE = re.compile(r'"([^"]+)"')


def utterance(par):
    """The quoted words of a paragraph that opens with a quotation, narration ("said she") dropped."""
    if not par.startswith('"') or par.count('"') % 2:
        return None
    u = " ".join(q.strip() for q in QUOTE.findall(par))
    if len(u) > 160:  # a long speech: its opening sentences
        kept = ""
        for s in sentences(u):
            if len(kept) + len(s) + 1 > 160:
                break
            kept = f"{kept} {s}".strip()
        u = kept
    if u.endswith(","):  # '"I thought how it would be," said she.'
        u = u[:-1] + "."
    return u if len(u) >= 8 else None


def exchanges(path, size):
    """Runs of consecutive quoted paragraphs, cut into windows of `size` utterances."""
    out, run = [], []
    for par in re.split(r"\n\s*\n", path.read_text(encoding="utf-8")):
        u = utterance(" ".join(par.split()).replace("_", ""))
        if u is None:
            run = []
            continue
        run.append(u)
        if len(run) == size:
            out.append(run)
            run = []
    return out


def conversation(utterances):
    roles = ["user", "assistant"]
    return [{"role": roles[i % 2], "content": u} for i, u in enumerate(utterances)]


def dialogues(novels, drng):
    """SFT conversations (two exchanges) and prompts with a history (an exchange and a question)."""
    train4, held3 = [], []
    for n in novels:
        if n.name == HELD_OUT:
            held3 += exchanges(n, 3)
        else:
            train4 += exchanges(n, 4)
    drng.shuffle(train4)
    drng.shuffle(held3)
    n_sft, n_ppo, n_eval = 400, 150, 50
    sft = [{"messages": conversation(u)} for u in train4[:n_sft]]
    ppo = [{"messages": conversation(u[:3])} for u in train4[n_sft:n_sft + n_ppo]]
    ev = [{"messages": conversation(u)} for u in held3[:n_eval]]
    assert len(sft) == n_sft and len(ppo) == n_ppo and len(ev) == n_eval
    return sft, ppo, ev


def mix(rows, extra, drng):
    """`extra` inserted among `rows` at random places (the order of `rows` kept)."""
    out = list(rows)
    for r in extra:
        out.insert(drng.randrange(len(out) + 1), r)
    return out


def main():
    novels = sorted((HERE / "austen").glob("*.txt"))
    train_pairs, held_pairs = [], []
    for n in novels:
        pairs = [c for c in (continuation(p) for p in paragraphs(n)) if c]
        (held_pairs if n.name == HELD_OUT else train_pairs).extend(pairs)
    train_pairs = list(dict(train_pairs).items())  # one record per distinct opening
    held_pairs = [(p, r) for p, r in dict(held_pairs).items() if p not in dict(train_pairs)]
    rng.shuffle(train_pairs)
    rng.shuffle(held_pairs)
    if not RAW_DICTIONARY.is_file():
        raise SystemExit(f"{RAW_DICTIONARY}: not found (the project's shared/data, next to the repository)")
    raw = [l for l in RAW_DICTIONARY.read_text(encoding="utf-8").splitlines() if l.strip()]
    entries = [json.loads(l) for l in raw]
    entries = list({e["term"]: e for e in entries if e["definition"].strip()}.values())
    rng.shuffle(entries)

    n_def_sft, n_def_ppo = 800, 100
    n_cont_sft, n_cont_ppo, n_cont_eval = 1600, 900, 100
    sft = [{"prompt": f"Define: {e['term']}", "response": definition(e)} for e in entries[:n_def_sft]]
    sft += [{"prompt": f"Continue: {p}", "response": r} for p, r in train_pairs[:n_cont_sft]]
    rng.shuffle(sft)
    ppo = [{"prompt": f"Define: {e['term']}"} for e in entries[n_def_sft:n_def_sft + n_def_ppo]]
    ppo += [{"prompt": f"Continue: {p}"} for p, _ in train_pairs[n_cont_sft:n_cont_sft + n_cont_ppo]]
    rng.shuffle(ppo)
    ev = [{"prompt": f"Define: {e['term']}"} for e in entries[n_def_sft + n_def_ppo:]]
    ev += [{"prompt": f"Continue: {p}"} for p, _ in held_pairs[:n_cont_eval]]
    rng.shuffle(ev)

    sft_prompts = {r["prompt"] for r in sft}
    assert not sft_prompts & {r["prompt"] for r in ppo}, "PPO prompts overlap SFT prompts"
    assert not sft_prompts & {r["prompt"] for r in ev}, "eval prompts overlap SFT prompts"

    drng = random.Random(4321)  # its own stream: the records above are those of before
    d_sft, d_ppo, d_ev = dialogues(novels, drng)
    sft, ppo, ev = mix(sft, d_sft, drng), mix(ppo, d_ppo, drng), mix(ev, d_ev, drng)
    outputs = [("sft.jsonl", [json.dumps(r, ensure_ascii=False) for r in sft]),
               ("prompts.jsonl", [json.dumps(r, ensure_ascii=False) for r in ppo]),
               ("eval_prompts.jsonl", [json.dumps(r, ensure_ascii=False) for r in ev]),
               ("devils_dictionary.jsonl", raw)]  # the raw lines, byte for byte
    for name, lines in outputs:
        kept = [l for l in lines if passes(json.loads(l))]
        with open(HERE / name, "w", encoding="utf-8") as f:
            f.writelines(l + "\n" for l in kept)
        print(f"{name}: {len(kept)} records ({len(lines) - len(kept)} screened out)")


if __name__ == "__main__":
    main()
