"""Faust's Kafka transport with a configurable fetch wait."""

from __future__ import annotations

from typing import Any

import faust
from faust.transport.drivers import aiokafka as aiokafka_driver


def transport_with_fetch_wait(app: faust.App, fetch_max_wait_ms: int) -> aiokafka_driver.Transport:
    """Faust's Kafka transport with our fetch wait instead of its fixed 1,500 ms.

    On a broker that holds an empty fetch for the whole wait (the local one does),
    Faust's value delays every event by up to 1.5 s at low rates (measured: 450 ms
    event -> profile; 50 ms with 20 ms waits). Set before any topic is declared: the
    transport is created on first use.
    """

    class Thread(aiokafka_driver.AIOKafkaConsumerThread):
        def _create_worker_consumer(self, transport: Any) -> Any:
            consumer = super()._create_worker_consumer(transport)
            consumer._fetch_max_wait_ms = fetch_max_wait_ms  # read when the consumer starts
            return consumer

    class FastFetchConsumer(aiokafka_driver.Consumer):
        def _new_consumer_thread(self) -> Thread:
            return Thread(self, loop=self.loop, beacon=self.beacon)

    class Transport(aiokafka_driver.Transport):
        Consumer = FastFetchConsumer

    return Transport(app.conf.broker_consumer, app)
