#!/usr/bin/env python3
"""Every relative link in the given Markdown files points at a file that exists, and every
`#anchor` at a heading of that file (GitHub's slugs). Usage: check_links.py FILE.md...
Exit 1 on a broken link."""
import os
import re
import sys


def slug(heading):
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path):
    found, seen, in_code = set(), {}, False
    for line in open(path, encoding="utf-8"):
        if line.startswith("```"):
            in_code = not in_code
        m = None if in_code else re.match(r"#{1,6} (.*)", line)
        if m:
            s = slug(m.group(1))
            found.add(s if s not in seen else f"{s}-{seen[s]}")
            seen[s] = seen.get(s, 0) + 1
    return found


broken = 0
for f in sys.argv[1:]:
    text = re.sub(r"```.*?```", "", open(f, encoding="utf-8").read(), flags=re.S)
    for link in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", link):
            continue
        path, _, frag = link.partition("#")
        target = os.path.normpath(os.path.join(os.path.dirname(f), path)) if path else f
        if not os.path.exists(target):
            print(f"{f}: {link}: no such file")
            broken += 1
        elif frag and target.endswith(".md") and frag not in anchors(target):
            print(f"{f}: {link}: no such heading")
            broken += 1
print(f"links: {broken} broken in {len(sys.argv) - 1} files")
sys.exit(1 if broken else 0)
