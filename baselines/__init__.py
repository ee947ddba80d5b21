"""The implementations the harness times against each other, registered by name.

`get(name).build(case, **options)` returns `forward(x) -> y`; see `baselines/registry.py`.
Importing this package registers: copy, seeded, eager, compile, native, per_element_rng.
"""

from baselines import mask_based, per_element_rng, roofline, seeded  # noqa: F401  (registration)
from baselines.case import DropoutCase, NotApplicable
from baselines.registry import IMPLEMENTATIONS, Implementation, get, register

__all__ = ["IMPLEMENTATIONS", "DropoutCase", "Implementation", "NotApplicable", "get", "register"]
