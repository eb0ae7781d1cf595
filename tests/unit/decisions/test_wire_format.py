"""The billing platform's wire format: form bodies with bracket keys, Basic auth."""

import base64

import pytest

from proffer_stream.api.errors import ApiError
from proffer_stream.api.wire import form_fields, key_of

pytestmark = pytest.mark.unit


def test_bracket_keys_nest_and_index_lists():
    body = (
        "customer_id=ann&roles[0]=admin&roles[1]=owner&tags[]=a&tags[]=b"
        "&request_context[url]=https%3A%2F%2Fx.io%2Fp%3Fa%3D1&custom=%7B%22plan%22%3A%22pro%22%7D"
    )
    assert form_fields(body) == {
        "customer_id": "ann",
        "roles": ["admin", "owner"],
        "tags": ["a", "b"],
        "request_context": {"url": "https://x.io/p?a=1"},
        "custom": '{"plan":"pro"}',
    }
    assert form_fields("") == {}


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ("roles[0=x", "body"),
        ("a=1&a=2", "body.a"),
        ("a=1&a[b]=2", "body.a"),
        ("no-equals-sign", "body"),
    ],
)
def test_malformed_forms_are_422_naming_where(body, loc):
    with pytest.raises(ApiError) as raised:
        form_fields(body)
    assert raised.value.status == 422
    assert raised.value.body.error.details[0].loc == loc


def test_the_key_as_bearer_or_basic_username():
    basic = base64.b64encode(b"pk_123:").decode()
    assert key_of(f"Basic {basic}") == "pk_123"
    assert key_of("Bearer pk_123") == "pk_123"
    assert key_of("Basic !!!") is None
    assert key_of("Digest x") is None
    assert key_of("") is None


@pytest.mark.parametrize(
    "body",
    [
        "roles[²]=a",  # isdigit() but not int()
        "roles[" + "9" * 5_000 + "]=a",  # more digits than int() reads
        "a" + "[x]" * 2_000 + "=1",  # nesting that recursed until it crashed
    ],
)
def test_hostile_form_keys_are_422_not_a_crash(body):
    try:
        fields = form_fields(body)
    except ApiError as raised:
        assert raised.status == 422
    else:  # an index that is no index is a name
        assert isinstance(fields["roles"], dict)
