"""The command lines of the tools that are not Hydra apps (`runners.ab`, `reports.ab`,
`reports.compare`): settings are a dataclass, overridden by key=value arguments as in Hydra."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

Settings = TypeVar("Settings")
HELP_FLAGS = ("-h", "--help", "help")


def wants_help(argv: Sequence[str]) -> bool:
    return any(arg in HELP_FLAGS for arg in argv)


def help_text(doc: str | None, schema: type) -> str:
    """The tool's docstring, then its settings with their defaults."""
    return f"{doc}\nsettings (key=value; defaults):\n\n{OmegaConf.to_yaml(OmegaConf.structured(schema))}"


def parse_settings(schema: type[Settings], argv: Sequence[str], error: type[Exception]) -> Settings:
    """The schema's defaults overridden by key=value arguments. Anything else (flags, Hydra's +/~
    prefixes), unknown keys and values of the wrong type raise `error` with the reason."""
    for arg in argv:
        if "=" not in arg or arg.startswith(("-", "+", "~")):
            raise error(f"arguments are key=value (see --help), got {arg!r}")
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), OmegaConf.from_dotlist(list(argv))))
    except (OmegaConfBaseException, yaml.YAMLError) as err:
        key = getattr(err, "full_key", None)
        where = f" {key}={OmegaConf.from_dotlist(list(argv)).get(key, '')!r}" if key and "." not in key else ""
        raise error(f"bad argument{where}: {str(err).splitlines()[0]}") from err
