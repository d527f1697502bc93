"""One place that replaces a `## ` section of bench/RESULTS.md, so the peer benches never overwrite each other's."""

from __future__ import annotations

import os
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")


def replace_section(heading: str, text: str, results: Path = RESULTS) -> None:
    """Replace the section under `heading` (up to the next `## ` heading) with `text`, or append it; every other
    line stays as it is. Written under a temporary name, then renamed, so a crash never leaves half a file."""
    current = results.read_text(encoding="utf-8") if results.exists() else "# Benchmark results\n"
    body = text.rstrip("\n") + "\n"
    start = current.find(heading + "\n")
    if start < 0:
        updated = current.rstrip("\n") + "\n\n" + body
    else:
        end = current.find("\n## ", start + len(heading))
        updated = current[:start] + body + ("\n" + current[end + 1:] if end >= 0 else "")
    part = results.with_name(results.name + ".part")
    part.write_text(updated, encoding="utf-8")
    os.replace(part, results)
