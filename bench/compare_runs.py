#!/usr/bin/env python3
"""Compare two run directories of `rlhf pipeline` file by file, for checking that a change to the
code did not change what a job computes: every file must hold the same bytes, except what
measures time (`timings.json`; `seconds` and throughput fields of the JSON summaries; the
`tokens_per_s` column of `metrics.csv`; the stage-times table and other durations of `report.md`) and the run
directory's own path where a file names it. A safetensors file is compared tensor by tensor (burn
writes its metadata in hash order); `param_ids.json` and `optimizer.bpk` are left out, since
burn draws parameter ids afresh in every process and keys the optimizer state by them (the weights
after every step are compared instead). Python's standard library only.

    python3 bench/compare_runs.py runs/before runs/after

Prints one line per differing or missing file and exits 1 if there is any, else prints how many
files matched and exits 0.
"""
import csv
import hashlib
import io
import json
import os
import re
import struct
import sys

# keys whose values are wall time or throughput, at any depth of a JSON file
TIME_KEYS = {"seconds", "tokens_per_s", "wall_seconds", "elapsed_s", "secs"}
TIME_COLUMNS = {"tokens_per_s"}
SKIP = {"timings.json", "param_ids.json", "optimizer.bpk"}


def files(root):
    out = set()
    for d, _, names in os.walk(root):
        for n in names:
            out.add(os.path.relpath(os.path.join(d, n), root))
    return out


def strip_json(v):
    if isinstance(v, dict):
        return {k: strip_json(x) for k, x in v.items() if k not in TIME_KEYS}
    if isinstance(v, list):
        return [strip_json(x) for x in v]
    return v


def safetensors(data):
    n = struct.unpack("<Q", data[:8])[0]
    head = json.loads(data[8 : 8 + n])
    head.pop("__metadata__", None)
    body = data[8 + n :]
    out = {}
    for name, t in sorted(head.items()):
        lo, hi = t["data_offsets"]
        out[name] = (t["dtype"], t["shape"], hashlib.sha256(body[lo:hi]).hexdigest())
    return json.dumps(out, sort_keys=True).encode()


def normal(path, root):
    data = open(path, "rb").read()
    if path.endswith(".safetensors"):
        return safetensors(data)
    data = data.replace(os.path.abspath(root).encode(), b"RUN")
    name = os.path.basename(path)
    if name.endswith(".json") and name != "tokenizer.json":
        return json.dumps(strip_json(json.loads(data)), sort_keys=True).encode()
    if name == "metrics.csv":
        rows = list(csv.reader(io.StringIO(data.decode())))
        keep = [i for i, c in enumerate(rows[0]) if c not in TIME_COLUMNS] if rows else []
        return "\n".join(",".join(r[i] for i in keep) for r in rows).encode()
    if name == "report.md":
        # durations ("in 6.1s", "12.3 s", "1,023 s") and throughputs change run to run
        text = data.decode()
        text = re.sub(r"(## Stage times\n)(.*?)(\n## )", r"\1\3", text, flags=re.S)
        text = re.sub(r"^# Run report: .*$", "", text, flags=re.M)
        # the wall-time target's verdict follows the time
        text = re.sub(r"^\| Pipeline wall time .*$", "", text, flags=re.M)
        text = re.sub(r"\d[\d,]*(\.\d+)?\s?(s|min|ms)\b", "TIME", text)
        text = re.sub(r"\d[\d,]*(\.\d+)?\s?tok(ens)?/s", "RATE", text)
        return text.encode()
    return data


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    a, b = sys.argv[1], sys.argv[2]
    fa, fb = files(a), files(b)
    bad = [f"only in {a}: {f}" for f in sorted(fa - fb)]
    bad += [f"only in {b}: {f}" for f in sorted(fb - fa)]
    same = 0
    for f in sorted(fa & fb):
        if os.path.basename(f) in SKIP:
            continue
        if normal(os.path.join(a, f), a) == normal(os.path.join(b, f), b):
            same += 1
        else:
            bad.append(f"differs: {f}")
    for line in bad:
        print(line)
    if bad:
        sys.exit(1)
    print(f"{same} files the same (timings aside)")


if __name__ == "__main__":
    main()
