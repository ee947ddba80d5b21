"""Markdown out of the reports: escaped text, tables, and publishing to a file and to GitHub's job
summary (`$GITHUB_STEP_SUMMARY`, which takes at most 1 MiB per step)."""

from __future__ import annotations

import os
import re
from pathlib import Path

# GitHub refuses a step summary over 1 MiB; stay well under it, whatever else the step appends.
STEP_SUMMARY_LIMIT = 900 * 1024
_SPECIAL = re.compile(r"([\\`*_\[\]<>|#])")


def escape(text) -> str:
    """Free text (a GPU name, an error message) as inert markdown: one line, specials escaped."""
    return _SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def table(header: list[str], rows: list[list]) -> str:
    """A markdown table; cells are escaped (pass already formatted numbers as text)."""
    lines = ["| " + " | ".join(escape(cell) for cell in header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(escape(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def capped(text: str, limit: int = STEP_SUMMARY_LIMIT) -> str:
    """`text` cut at a line boundary to at most `limit` bytes of UTF-8, saying so at the end."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    note = "\n\n(cut here: the rest did not fit GitHub's job summary; the full text is in the file)\n"
    room = limit - len(note.encode("utf-8"))
    cut = data[:room].decode("utf-8", errors="ignore")
    return cut[: cut.rfind("\n") + 1] + note


def publish(markdown: str, path: Path | None) -> None:
    """Write the markdown to `path` (atomically) and append it, capped, to $GITHUB_STEP_SUMMARY if set."""
    if path is not None:
        partial = path.with_name(path.name + ".partial")
        partial.write_text(markdown)
        partial.replace(path)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a") as handle:
            handle.write(capped(markdown) + "\n")
