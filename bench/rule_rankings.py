#!/usr/bin/env python3
"""Rankings by a rule that is not sentiment: a second preference for checking that `rlhf ppo`'s
defaults hold on a reward model they were not tuned on (docs/results.md, "PPO's defaults on
another reward model").

The rule: a response is better the larger the share of its words that are short (three
letters or fewer: "a", "of", "she", "had" ...), i.e. plain wording. It is unrelated to VADER's
sentiment and can be pushed far (stacking short words), which is what a KL penalty and a score
cap must hold back. Ties keep the samples' order; prompts with fewer than two distinct
non-empty responses are dropped.

    python3 bench/rule_rankings.py RUN/samples.jsonl > rule.jsonl
"""
import json
import re
import sys

WORD = re.compile(r"[A-Za-z']+")


def short_share(text):
    words = WORD.findall(text)
    if not words:
        return 0.0
    return sum(1 for w in words if len(w.strip("'")) <= 3) / len(words)


def main(path):
    kept = dropped = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            s = json.loads(line)
            seen, responses = set(), []
            for r in s["responses"]:
                key = r.strip()
                if key and key not in seen:
                    seen.add(key)
                    responses.append(r)
            if len(responses) < 2:
                dropped += 1
                continue
            # sorted() is stable: ties keep the samples' order
            ranked = sorted(responses, key=short_share, reverse=True)
            print(json.dumps({"prompt": s["prompt"], "responses": ranked}, ensure_ascii=False))
            kept += 1
    print(f"rule_rankings: {kept} prompts ranked, {dropped} dropped", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: rule_rankings.py SAMPLES.jsonl > RANKINGS.jsonl")
    main(sys.argv[1])
