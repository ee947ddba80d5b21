"""Markdown out of the reports: free text escaped, tables, and publishing to a file and to GitHub's
job summary (`$GITHUB_STEP_SUMMARY`, which takes at most 1 MiB per step).

Free text from the CSVs (GPU names, versions, impl names, statuses, error texts) must read as
itself in a heading, a table cell or a line of text. Escaped with a backslash: the backslash itself
(else a CSV's own backslash could undo the escape after it), `|` (a table cell's end), `*` and `_`
(emphasis), backticks (code), `<` and `>` (HTML and block quotes), `[` and `]` (links and images),
`~` (GitHub's strikethrough), `$` (GitHub's math) and a `#` that starts the text (a heading). A
newline, which would end a table row or a heading, becomes a space.

An `_` between two letters or digits is left as it is: it cannot open or close emphasis there
(CommonMark), and names such as fwd_bwd and cuda_graph read better without the backslash.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

SPECIAL = re.compile(r"([\\`*<>\[\]|~$])")
EMPHASIS_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
# GitHub refuses a step summary over 1 MiB; stay well under it, whatever else the step appends.
STEP_SUMMARY_LIMIT = 900 * 1024


def escape(text) -> str:
    """`text` on one line, with every character that markdown would read as syntax escaped."""
    text = SPECIAL.sub(r"\\\1", " ".join(str(text).splitlines()))
    text = EMPHASIS_UNDERSCORE.sub(r"\\_", text)
    return "\\" + text if text.startswith("#") else text


def table(header: list[str], rows: list[list]) -> str:
    """A markdown table; every cell escaped (pass numbers already formatted as text)."""
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


def publish(markdown: str, path: Path | None, step_summary: str | None = None) -> None:
    """Write the markdown to `path` (atomically) and append `step_summary` (default: the same text),
    capped, to $GITHUB_STEP_SUMMARY if set."""
    if path is not None:
        partial = path.with_name(path.name + ".partial")
        partial.write_text(markdown)
        partial.replace(path)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a") as handle:
            handle.write(capped(markdown if step_summary is None else step_summary) + "\n")
