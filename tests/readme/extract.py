#!/usr/bin/env python3
"""Splits README.md into its shell blocks, in order: the README's doc test (tests/readme/run.sh).

Every ```sh block is run, except one right after a line `<!-- readme-test: skip REASON -->` (the reason is
required). Writes DIR/NNN.sh per block to run and prints one line per block: `NNN run|serve|skip LINE
[REASON]`. A block that starts the server (a line `tessera serve`) is `serve`: the harness runs it in the
background, as the README's reader runs it in a terminal of its own.
"""
import pathlib
import re
import sys

readme, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
lines = readme.read_text(encoding="utf-8").splitlines()
skip_re = re.compile(r"^<!--\s*readme-test:\s*skip\s+(.+?)\s*-->$")
n = 0
i = 0
pending_skip = None
while i < len(lines):
    line = lines[i]
    m = skip_re.match(line.strip())
    if m:
        pending_skip = m.group(1)
        i += 1
        continue
    if line.strip().startswith("<!--") and "readme-test" in line:
        sys.exit(f"README.md:{i + 1}: a readme-test marker needs a reason: <!-- readme-test: skip REASON -->")
    fence = re.match(r"^```(\S*)\s*$", line)
    if fence:
        lang = fence.group(1)
        start = i + 1
        j = start
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        body = lines[start:j]
        if lang in ("sh", "bash", "shell", "console"):
            n += 1
            if pending_skip:
                print(f"{n:03} skip {start} {pending_skip}")
            else:
                kind = "serve" if any(re.match(r"^\s*tessera serve\b", b) for b in body) else "run"
                (out / f"{n:03}.sh").write_text("\n".join(body) + "\n", encoding="utf-8")
                print(f"{n:03} {kind} {start}")
        pending_skip = None
        i = j + 1
        continue
    if line.strip():
        pending_skip = None if not line.strip().startswith("<!--") else pending_skip
    i += 1
