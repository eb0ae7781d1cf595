"""One owner for every topic's name and config; dead letters say what, why and where."""

import base64
import json

import pytest

from proffer_stream.core.errors import BadRecord
from proffer_stream.core.settings import Settings
from proffer_stream.kafka import schemas
from proffer_stream.kafka.deadletter import SourceRecord, dead_letter
from proffer_stream.kafka.topics import topics, topics_for
from proffer_stream.worker.app import create_app

pytestmark = pytest.mark.unit


def test_changelogs_are_compacted_and_the_rest_keep_the_broker_default():
    names = topics("acme.", "w2")
    assert names.signals_changelog.config == {"cleanup.policy": "compact"}
    assert names.events.config == {}
    assert names.signals_changelog.name == "acme.w2-signals-changelog"
    assert names.events.name == "acme.proffer.events"


def test_the_changelog_named_here_is_the_one_faust_writes():
    settings = Settings(topic_prefix="t1.", worker_id="blue", kafka_bootstrap_servers="x:1")
    app = create_app(settings)
    table = app.tables["signals"]
    assert table.changelog_topic.get_topic_name() == topics_for(settings).signals_changelog.name


def test_schemas_name_the_changelog_from_the_default_settings():
    _model, topic, _mode = schemas.messages()["signals-changelog.v1.json"]
    assert topic == topics("", Settings.model_fields["worker_id"].default).signals_changelog.name


def test_a_dead_letter_keeps_the_reason_position_and_original_bytes():
    record = SourceRecord("proffer.events", 3, 42, 1_700_000_000_000, b"k", b"\x00not json")
    letter = dead_letter(BadRecord("invalid_json", "events: bad"), stage="test", record=record)
    assert (letter.reason, letter.error, letter.stage) == ("invalid_json", "events: bad", "test")
    assert (letter.source_topic, letter.partition, letter.offset) == ("proffer.events", 3, 42)
    assert base64.b64decode(letter.value_b64) == b"\x00not json"
    assert base64.b64decode(letter.key_b64) == b"k"
    assert json.loads(letter.model_dump_json())["failed_at"].endswith("Z")


def test_a_record_too_large_to_carry_keeps_its_position_size_and_a_prefix():
    value = b"x" * 900_000
    record = SourceRecord("proffer.events", 0, 7, None, b"k", value)
    letter = dead_letter(BadRecord("too_large", "900000 bytes"), stage="test", record=record)
    assert letter.truncated and letter.value_size == 900_000
    assert base64.b64decode(letter.value_b64) == value[:65_536]
    assert len(letter.model_dump_json()) < 100_000
