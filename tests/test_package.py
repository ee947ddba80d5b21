"""The op as a library: the wheel's contents, and the wheel installed into a fresh virtual environment,
imported by its package name from a folder outside the repository (scripts/package_check.py)."""

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

import kernels

ROOT = Path(__file__).resolve().parents[1]


def setuptools_version() -> tuple[int, ...]:
    try:
        import setuptools
    except ImportError:
        return ()
    return tuple(int(part) for part in setuptools.__version__.split(".")[:2] if part.isdigit())


# The wheel is built without build isolation (no package index needed): this environment's setuptools
# must read pyproject.toml's license string, which setuptools 77 introduced. `make install` installs
# it (the dev extra); a machine whose Python has an older one says so here.
pytestmark = pytest.mark.skipif(setuptools_version() < (77,), reason="building the wheel needs setuptools >= 77 "
                                f"in this environment (found {setuptools_version() or 'none'})")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    (found,) = out.glob("*.whl")
    return found


@pytest.mark.slow
def test_the_wheel_holds_the_op_and_its_cpp_source_and_nothing_else_of_the_repo(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert wheel.name.startswith(f"seeded_variational_dropout-{kernels.__version__}-")
    assert "seeded_variational_dropout/csrc/fast_path.cpp" in names
    modules = {name.split("/")[1] for name in names if name.startswith("seeded_variational_dropout/")}
    assert {"__init__.py", "functional.py", "triton_kernel.py", "launch.py", "mask_stream.py"} <= modules
    top = {name.split("/")[0] for name in names}
    assert top == {"seeded_variational_dropout", f"seeded_variational_dropout-{kernels.__version__}.dist-info"}
    assert not [name for name in names if name.endswith(".pyc") or "__pycache__" in name]
    metadata = zipfile.ZipFile(wheel).read(
        f"seeded_variational_dropout-{kernels.__version__}.dist-info/METADATA").decode()  # fmt: skip
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    core = [line for line in requires if "extra ==" not in line]
    assert sorted(line.split()[1].split(">")[0].split("=")[0] for line in core) == ["ninja", "torch", "triton"]
    assert any("hydra-core" in line and "extra == \"bench\"" in line for line in requires)
    assert "License-Expression: MIT" in metadata and "License-File: LICENSE" in metadata
    assert f"seeded_variational_dropout-{kernels.__version__}.dist-info/licenses/LICENSE" in names


@pytest.mark.slow
def test_the_wheel_in_a_fresh_environment_runs_forward_and_backward_outside_the_repo(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())  # fmt: skip
    # torch and triton come from this environment, as a venv made with --system-site-packages would
    # see them; the package itself only from the wheel.
    (site / "this_environment.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                           "--target", str(site), str(wheel)], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "TRITON_INTERPRET")}
    env["CUDA_VISIBLE_DEVICES"] = ""  # the GPU half runs on the GPU machine, against the same wheel
    check = subprocess.run([str(python), str(ROOT / "scripts" / "package_check.py")], cwd=outside, env=env,
                           capture_output=True, text=True, timeout=300)  # fmt: skip
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr[-3000:]
    assert f"from {site / 'seeded_variational_dropout'}" in check.stdout
    assert "package check passed" in check.stdout
    no_kernels = subprocess.run([str(python), "-c", "import kernels"], cwd=outside, env=env, capture_output=True)
    assert no_kernels.returncode != 0  # the repo's folder names are not installed as packages
