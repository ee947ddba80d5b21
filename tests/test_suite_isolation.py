"""The suite's own isolation: a test sees TRITON_INTERPRET as the session began, whatever a fixture of
wider scope set before it (on a CUDA machine a leaked "1" makes Inductor's kernels run interpreted)."""

import os

import pytest
from conftest import TRITON_INTERPRET_AT_START, restore_triton_interpret


@pytest.fixture(scope="module")
def sets_triton_interpret():
    os.environ["TRITON_INTERPRET"] = "set by a module-scoped fixture"
    yield
    restore_triton_interpret()


def test_a_module_fixtures_triton_interpret_does_not_reach_the_test(sets_triton_interpret):
    assert os.environ.get("TRITON_INTERPRET") == TRITON_INTERPRET_AT_START
