"""The worker starts only on the faust-streaming its seams are written against."""

import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from proffer_stream.core.errors import ProfferError, UnsupportedFaust
from proffer_stream.worker.faust_seams.version import PINNED_FAUST, require_pinned_faust

pytestmark = pytest.mark.unit

PYPROJECT = Path(__file__).resolve().parents[3] / "pyproject.toml"


def test_the_pinned_faust_passes():
    assert metadata.version("faust-streaming") == PINNED_FAUST
    require_pinned_faust()


def test_another_faust_fails_naming_both_versions_and_what_to_do(monkeypatch):
    real = metadata.version
    monkeypatch.setattr(
        metadata, "version", lambda name: "0.16.0" if name == "faust-streaming" else real(name)
    )
    with pytest.raises(UnsupportedFaust) as raised:
        require_pinned_faust()
    assert isinstance(raised.value, ProfferError)
    message = str(raised.value)
    assert "faust-streaming 0.16.0 is installed" in message
    assert f"faust-streaming=={PINNED_FAUST}" in message
    assert "pyproject.toml" in message


def test_pyproject_pins_faust_exactly_to_the_seams_version():
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    assert f"faust-streaming=={PINNED_FAUST}" in dependencies
