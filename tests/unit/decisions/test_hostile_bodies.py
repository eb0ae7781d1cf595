"""Personalised offers bodies a client could send to crash the gateway: 422 (or a
404 for an id that names nothing), never a 500."""

import pytest
from pydantic import ValidationError

from proffer_stream.api.decision_models import PersonalizedOffersBody
from proffer_stream.api.decisions import made_at

pytestmark = pytest.mark.unit


def test_a_custom_json_string_nested_too_deep_is_refused():
    with pytest.raises(ValidationError) as refused:
        PersonalizedOffersBody.model_validate({"customer_id": "ann", "custom": "[" * 100_000})
    assert refused.value.errors()[0]["loc"] == ("custom",)


@pytest.mark.parametrize("given", ["dec_²_ab", "dec_" + "9" * 5_000 + "_ab", "dec__ab", "x"])
def test_an_id_that_is_not_a_decisions_has_no_time(given):
    assert made_at(given) is None


def test_a_decisions_id_says_when_it_was_made():
    assert made_at("dec_1700000000123_0a1b") == 1_700_000_000.123
