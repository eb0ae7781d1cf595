"""One exception hierarchy: every error raised on purpose is a ProfferError."""

import pytest

from proffer_stream.api.errors import ApiError
from proffer_stream.cli import main
from proffer_stream.core.errors import ProfferError
from proffer_stream.llm.local_server import LocalModelUnavailable
from proffer_stream.local.supervisor import GaveUp
from proffer_stream.offers.lifecycle import TransitionRejected
from proffer_stream.offers.rules import RulesError

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "error", [ApiError, LocalModelUnavailable, GaveUp, TransitionRejected, RulesError]
)
def test_every_error_derives_from_the_one_base(error):
    assert issubclass(error, ProfferError)


def test_the_cli_reports_a_proffer_error_without_a_traceback(tmp_path, monkeypatch, capsys):
    rules = tmp_path / "rules.json"
    rules.write_text("{not json")
    monkeypatch.setenv("PROFFER_RULES_FILE", str(rules))
    assert main(["up"]) == 1
    assert capsys.readouterr().err.startswith(f"proffer-stream: {rules}: not valid JSON")
