"""IncrementalAlterConfigs (Kafka API 44), which aiokafka does not implement.

Brokers since Kafka 2.3 take it, and the local broker (tansu) takes only this one, not
the legacy AlterConfigs. It sets the named keys and leaves the topic's other config
alone, where the legacy call replaces the whole set.
"""

from __future__ import annotations

from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import for_code
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import Array, Boolean, Int8, Int16, Int32, Schema, String

_TOPIC = 2  # ConfigResourceType.TOPIC
_SET = 0  # the SET operation


class IncrementalAlterConfigsResponse_v0(Response):  # type: ignore[misc]  # aiokafka is untyped
    API_KEY = 44
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "responses",
            Array(
                ("error_code", Int16),
                ("error_message", String("utf-8")),
                ("resource_type", Int8),
                ("resource_name", String("utf-8")),
            ),
        ),
    )


class IncrementalAlterConfigsRequest_v0(RequestStruct):  # type: ignore[misc]  # aiokafka is untyped
    API_KEY = 44
    API_VERSION = 0
    RESPONSE_TYPE = IncrementalAlterConfigsResponse_v0
    SCHEMA = Schema(
        (
            "resources",
            Array(
                ("resource_type", Int8),
                ("resource_name", String("utf-8")),
                (
                    "configs",
                    Array(
                        ("name", String("utf-8")),
                        ("config_operation", Int8),
                        ("value", String("utf-8")),
                    ),
                ),
            ),
        ),
        ("validate_only", Boolean),
    )


class IncrementalAlterConfigsRequest(Request[IncrementalAlterConfigsRequest_v0]):  # type: ignore[misc]
    API_KEY = 44

    def __init__(self, resources: list[Any]) -> None:
        self._resources = resources

    def build(
        self, request_struct_class: type[IncrementalAlterConfigsRequest_v0]
    ) -> IncrementalAlterConfigsRequest_v0:
        return request_struct_class(self._resources, False)


async def set_topic_config(admin: AIOKafkaAdminClient, topic: str, config: dict[str, str]) -> None:
    """Set ``config`` on an existing topic; raise the broker's error if it refuses."""
    entries = [(name, _SET, value) for name, value in config.items()]
    request = IncrementalAlterConfigsRequest([(_TOPIC, topic, entries)])
    response = await admin._send_request(request)
    for error_code, error_message, _type, _name in response.responses:
        if error_code:
            raise for_code(error_code)(f"setting {config} on {topic}: {error_message}")
