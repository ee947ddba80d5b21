"""How `make` hands its variables to a Python entry point without a shell reading them again.

    python -m runners.make_command MODULE ARG...      (the Makefile's recipes; MODULE: runners.bench, ...)

The Makefile exports its variables (DTYPE, ARGS, ...) to the environment and names them in ARGs:

- `key={NAME}` becomes one argument, `key=` followed by the value of the environment variable NAME,
  taken as it is (spaces, quotes, `;`, `$(...)`, `*` and `[...]` included); it is left out when NAME
  is empty or unset, so the entry point's own default applies;
- `{NAME...}` becomes the value of NAME split into arguments as a POSIX shell splits words (quotes
  group, a backslash escapes), with no variable, command or glob expansion (`shlex.split`): so
  `ARGS="'p=[0.1, 0.5]' mode=fwd"` gives two arguments, and a file named `p=1` cannot turn
  `p=[0.1]` into `p=1`;
- any other ARG is passed on as it is.

Then MODULE runs as `python -m MODULE ARGS...` in this process's place (exec), with the same
interpreter and environment.
"""

from __future__ import annotations

import os
import re
import shlex
import sys

ONE_VALUE = re.compile(r"^(?P<key>[^{}=]+)=\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)\}$")
SPLIT_VALUE = re.compile(r"^\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)\.\.\.\}$")


def expand(args: list[str], environ) -> list[str]:
    """The arguments MODULE gets (see the module docstring); ValueError for a value that does not
    split (an unclosed quote), naming the variable."""
    expanded = []
    for arg in args:
        one, split = ONE_VALUE.match(arg), SPLIT_VALUE.match(arg)
        if one:
            value = environ.get(one["name"], "")
            if value:
                expanded.append(f"{one['key']}={value}")
        elif split:
            value = environ.get(split["name"], "")
            try:
                expanded += shlex.split(value)
            except ValueError as error:
                raise ValueError(f"{split['name']}={value!r}: {error} (quote each Hydra override whole)") from None
        else:
            expanded.append(arg)
    return expanded


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m runners.make_command MODULE [key={NAME}] [{NAME...}] [ARG ...]", file=sys.stderr)
        return 2
    try:
        expanded = expand(args[1:], os.environ)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    sys.stdout.flush()
    os.execv(sys.executable, [sys.executable, "-m", args[0], *expanded])
    return 0  # not reached: exec replaces this process


if __name__ == "__main__":
    sys.exit(main())
