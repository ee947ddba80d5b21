"""The implementations users pick today, which the seeded op is timed against, registered by name
in `baselines/registry.py`: eager, compile, native (mask-based, `baselines/mask_based.py`) and
per_element_rng (`baselines/per_element_rng.py`). The harness adds the product and the roofline
(`runners/implementations.py`), and looks every name up there.
"""

from baselines import add_norm, mask_based, per_element_rng  # noqa: F401  (registration)
from baselines.case import AddNormCase, DropoutCase, NotApplicable
from baselines.registry import IMPLEMENTATIONS, Implementation, get, register

__all__ = ["IMPLEMENTATIONS", "AddNormCase", "DropoutCase", "Implementation", "NotApplicable", "get", "register"]
