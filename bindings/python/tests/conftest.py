"""Shared fixtures of the hush Python tests.

The tests import the installed ``hush`` package (scripts/bindings.sh installs it into
target/py-venv). Without an installed package they fall back to ``bindings/python/src``, where
scripts/bindings.sh puts the generated module and the native library.
"""

import json
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
VECTORS = ROOT / "test-vectors"

try:
    import hush  # noqa: F401
except ImportError:
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "src"))
    import hush  # noqa: F401


def load_vectors(name):
    """One file of test-vectors/ as parsed JSON."""
    with open(VECTORS / name, encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="session")
def repo_root():
    """The repository root (for tests that start a relay or read fixtures)."""
    return ROOT


@pytest.fixture(scope="session")
def native_library():
    """The path of the native library the hush package loaded."""
    libs = sorted(pathlib.Path(hush.__file__).parent.glob("*hush_ffi*"))
    libs = [p for p in libs if p.suffix in (".so", ".dylib", ".dll")]
    assert libs, "the hush package holds no native library; run scripts/bindings.sh"
    return libs[0]
