"""Free text from the CSVs (GPU names, versions, impl names, statuses, error texts) as literal
markdown: whatever a CSV holds, it reads as itself in a heading, a table cell or a line of text.

Escaped with a backslash: the backslash itself (else a CSV's own backslash could undo the escape
after it), `|` (a table cell's end), `*` and `_` (emphasis), backticks (code), `<` and `>` (HTML
and block quotes), `[` and `]` (links and images), `~` (GitHub's strikethrough), `$` (GitHub's
math) and a `#` that starts the text (a heading). A newline, which would end a table row or a
heading, becomes a space.

An `_` between two letters or digits is left as it is: it cannot open or close emphasis there
(CommonMark), and names such as fwd_bwd and cuda_graph read better without the backslash.
"""

from __future__ import annotations

import re

SPECIAL = re.compile(r"([\\`*<>\[\]|~$])")
EMPHASIS_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")


def escape(text: str) -> str:
    """`text` on one line, with every character that markdown would read as syntax escaped."""
    text = SPECIAL.sub(r"\\\1", " ".join(str(text).splitlines()))
    text = EMPHASIS_UNDERSCORE.sub(r"\\_", text)
    return "\\" + text if text.startswith("#") else text
