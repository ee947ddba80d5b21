"""The README's generated region: everything between the two marker comments is replaced."""

from __future__ import annotations

from pathlib import Path

BEGIN = "<!-- BEGIN RESULTS -->"
END = "<!-- END RESULTS -->"


def check_markers(text: str, source: str) -> None:
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise ValueError(f"{source}: needs exactly one {BEGIN} followed by one {END}")


def region(text: str, source: str = "README") -> str:
    """The text between BEGIN and END."""
    check_markers(text, source)
    return text.split(BEGIN)[1].split(END)[0]


def splice(text: str, section: str, source: str = "README") -> str:
    """`text` with the region between BEGIN and END replaced by `section`."""
    check_markers(text, source)
    head, rest = text.split(BEGIN)
    _, tail = rest.split(END)
    return f"{head}{BEGIN}\n{section.strip()}\n{END}{tail}"


def update_readme(path: Path, section: str) -> str:
    """The README text with `section` spliced in (the caller writes it)."""
    return splice(path.read_text(encoding="utf-8"), section, str(path))
