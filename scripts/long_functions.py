#!/usr/bin/env python3
"""Lists the Rust functions outside tests longer than a limit (default 80 lines) and exits 1 if
there is any: the code base keeps functions short enough to read at once (issue #12). A function
that must stay longer says why in a comment and raises its own limit with a line
`// long-function: N lines, because …` right above it.

Usage: scripts/long_functions.py [LIMIT]   (run from anywhere; reads src/ of this checkout)
"""
import glob
import os
import re
import sys

LIMIT = int(sys.argv[1]) if len(sys.argv) > 1 else 80
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
FN = re.compile(r'^(\s*)(pub(\([^)]*\))?\s+)?(const\s+)?(unsafe\s+)?(extern "C-unwind"\s+)?fn\s+(\w+)')
ALLOW = re.compile(r"//\s*long-function:\s*(\d+)")


def long_functions(path):
    lines = open(path, encoding="utf-8").read().split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if re.match(r"\s*#\[cfg\(test\)\]", line):
            # skip the test item that follows (a module or a function)
            k = i + 1
            indent = re.match(r"^(\s*)", lines[k]).group(1)
            if lines[k].rstrip().endswith(";"):
                i = k + 1
                continue
            j = k
            while j < len(lines) and lines[j] != indent + "}":
                j += 1
            i = j + 1
            continue
        m = FN.match(line)
        if m and not line.rstrip().endswith(";"):
            indent = m.group(1)
            j = i
            while j < len(lines) and lines[j] != indent + "}":
                j += 1
            length = j - i + 1
            allowed = LIMIT
            back = i - 1
            while back >= 0 and lines[back].strip().startswith(("///", "//", "#[")):
                a = ALLOW.search(lines[back])
                if a:
                    allowed = int(a.group(1))
                back -= 1
            if length > allowed:
                yield length, i + 1, m.group(7)
            i = j
        i += 1


found = []
for path in sorted(glob.glob(os.path.join(ROOT, "src", "**", "*.rs"), recursive=True)):
    if path.endswith("_tests.rs") or path.endswith("pg_tests.rs"):
        continue
    for length, line, name in long_functions(path):
        found.append(f"{length:5d} lines  {os.path.relpath(path, ROOT)}:{line}  {name}")
if found:
    print(f"functions over {LIMIT} lines outside tests:")
    print("\n".join(found))
    sys.exit(1)
print(f"no function over {LIMIT} lines outside tests")
