#!/usr/bin/env python3
"""Builds the bundled JSONL data from the raw texts in this folder (run once; output committed).

  python3 assets/build_assets.py

Deterministic (fixed seed). Writes:
  sft.jsonl           SFT demonstrations: "Define: X" -> Bierce's entry, "Continue: <opening>" -> Austen's next sentences
  prompts.jsonl       PPO / RM prompts, disjoint from the SFT prompts (same two kinds)
  eval_prompts.jsonl  held-out prompts: unused dictionary terms and openings from the held-out novel
Held-out novel (never trained on): austen/persuasion.txt.
"""
import json, random, re, pathlib

HERE = pathlib.Path(__file__).resolve().parent
HELD_OUT = "persuasion.txt"
ABBREV = re.compile(r"\b(Mr|Mrs|Dr|St|Col|Capt|Sir)\.$")
rng = random.Random(1234)


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
    entries = [json.loads(l) for l in (HERE / "devils_dictionary.jsonl").read_text().splitlines() if l.strip()]
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
    for name, rows in [("sft.jsonl", sft), ("prompts.jsonl", ppo), ("eval_prompts.jsonl", ev)]:
        with open(HERE / name, "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        print(f"{name}: {len(rows)} records")


if __name__ == "__main__":
    main()
