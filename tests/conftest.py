"""Fixtures shared by the test suite."""

import os
import tempfile
from pathlib import Path

import pytest

# Commands started as processes by the tests keep compiled programs in a
# temporary folder instead of the user's cache folder.
os.environ.setdefault(
    "SEQCAST_CACHE_DIR", tempfile.mkdtemp(prefix="seqcast-test-cache-")
)

# Real CSV series kept in a `shared/data` folder beside the repository checkout.
# They are not part of the package, so tests that need them skip without them.
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """The folder of real CSV series; skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent")
    return SHARED_DATA
