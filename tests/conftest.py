"""Fixtures shared by the test suite."""

from pathlib import Path

import pytest

# Real CSV series kept in a `shared/data` folder beside the repository checkout.
# They are not part of the package, so tests that need them skip without them.
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """The folder of real CSV series; skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent")
    return SHARED_DATA
