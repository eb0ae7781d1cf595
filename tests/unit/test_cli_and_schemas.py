"""schemas/ matches the models; the CLI teaches."""

import subprocess
import sys
from pathlib import Path

import pytest

from proffer_stream.kafka import schemas

pytestmark = pytest.mark.unit

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def test_schema_files_match_the_models():
    assert schemas.drifted(SCHEMAS) == [], "run `proffer-stream schemas write` and commit schemas/"


def test_drift_is_detected(tmp_path):
    schemas.write(tmp_path)
    assert schemas.drifted(tmp_path) == []
    (tmp_path / "proffer.events.v1.json").write_text("{}")
    assert schemas.drifted(tmp_path) == ["proffer.events.v1.json"]


def test_help_lists_the_commands_and_configuration():
    result = subprocess.run(
        [sys.executable, "-m", "proffer_stream", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    for word in (
        "up",
        "worker",
        "gateway",
        "sink",
        "migrate",
        "keys",
        "schemas",
        "PROFFER_KAFKA_BOOTSTRAP_SERVERS",
        "PROFFER_DATABASE_URL",
    ):
        assert word in result.stdout


def test_up_takes_how_many_workers_to_start():
    from proffer_stream.cli import _parser

    assert _parser().parse_args(["up", "--workers", "3"]).workers == 3
    assert _parser().parse_args(["up"]).workers is None  # PROFFER_WORKERS decides
    for bad in ("0", "-1", "two"):
        with pytest.raises(SystemExit):
            _parser().parse_args(["up", "--workers", bad])
