"""The one faust-streaming version the seams are written against, checked at start."""

from __future__ import annotations

from importlib import metadata

from proffer_stream.core.errors import UnsupportedFaust

PINNED_FAUST = "0.15.3"
"""The faust-streaming release whose private methods the seams override or copy (its pin in
pyproject.toml says the same; a unit test checks they agree)."""


def require_pinned_faust() -> None:
    """Fail with :class:`UnsupportedFaust` unless faust-streaming is :data:`PINNED_FAUST`.

    The seams override private methods (one of them copied whole); on another release they
    may silently do nothing, or undo a fix Faust made. Called when the worker app is created.
    """
    installed = metadata.version("faust-streaming")
    if installed != PINNED_FAUST:
        raise UnsupportedFaust(installed, PINNED_FAUST)
