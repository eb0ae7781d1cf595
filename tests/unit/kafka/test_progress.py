"""Readiness watches each partition of every topic a consumer group reads."""

import pytest
from aiokafka import TopicPartition

from proffer_stream.core.settings import Settings
from proffer_stream.kafka.progress import GroupWatch
from proffer_stream.kafka.topics import topics_for
from proffer_stream.sink.consumer import projections_for

pytestmark = pytest.mark.unit

EVENTS = TopicPartition("proffer.events", 0)
REQUESTS = TopicPartition("proffer.offer-requests", 0)


def test_a_partition_with_lag_that_does_not_move_stalls_while_the_others_move():
    watch = GroupWatch("worker", "proffer-worker", ["proffer.events", "proffer.offer-requests"])
    ends = {EVENTS: 100, REQUESTS: 5}
    assert watch.stalled({EVENTS: 10, REQUESTS: 2}, ends, now=0.0, stall_seconds=1.0) == []
    assert watch.stalled({EVENTS: 50, REQUESTS: 2}, ends, now=0.9, stall_seconds=1.0) == []
    assert watch.stalled({EVENTS: 90, REQUESTS: 2}, ends, now=1.5, stall_seconds=1.0) == [REQUESTS]
    assert watch.stalled({EVENTS: 90, REQUESTS: 3}, ends, now=2.0, stall_seconds=1.0) == []
    assert watch.stalled({EVENTS: 100, REQUESTS: 5}, ends, now=9.0, stall_seconds=1.0) == []


def test_the_sink_is_watched_on_every_topic_it_projects():
    topics = topics_for(Settings())
    assert {t.name for t in topics.sink_inputs()} == set(projections_for(Settings()))
