#!/usr/bin/env python3
"""No line of Rust wider than the max_width of the repository's rustfmt.toml, counted in
characters: rustfmt cannot break a long string literal or comment and then leaves the line as it
is, so `cargo fmt --check` passes it. Usage: check_line_width.py PATH... (files, or folders
searched for *.rs). Exit 1 naming FILE:LINE of each line over, or a PATH that does not exist."""
import os
import re
import sys

toml = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "rustfmt.toml")
MAX = int(re.search(r"^max_width\s*=\s*(\d+)", open(toml).read(), re.M).group(1))


def rust_files(path):
    if os.path.isfile(path):
        yield path
        return
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            if name.endswith(".rs"):
                yield os.path.join(root, name)


over, missing = 0, 0
for arg in sys.argv[1:]:
    if not os.path.exists(arg):
        print(f"{arg}: no such file or folder")
        missing += 1
    for f in rust_files(arg):
        with open(f, encoding="utf-8") as src:
            for n, line in enumerate(src.read().splitlines(), 1):
                if len(line) > MAX:
                    print(f"{f}:{n}: {len(line)} characters, over {MAX}")
                    over += 1
if over:
    print(f"{over} line(s) over {MAX} characters (rustfmt.toml's max_width): break the string "
          "(a trailing `\\` or concat!) or rewrap the comment")
sys.exit(1 if over or missing else 0)
