"""The tenant config agent: the one writer of each tenant's rule and policy versions.

Changes asked through the API arrive on ``proffer.tenant-config-commands`` keyed by
tenant and kind, so each key has one owner. The owner decides each command against
the version in force (:func:`~proffer_stream.offers.config.decide_change`), publishes
the change on ``proffer.tenant-config`` (the source of truth; PostgreSQL is its
projection) and the outcome on ``proffer.tenant-config-outcomes``, which the gateway
waits for. Of two changes made against one version, one is applied and the other is
rejected, saying which version is in force.

What is in force is what the :class:`~proffer_stream.worker.tenant_config.ConfigFollower`
read of the topic, read to its end before each batch (a key that moved here from
another worker brings its last change with it), plus the changes this owner made.
A command decided again after a crash answers as it did the first time.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol

from faust.types import EventT

from proffer_stream.core.errors import BadRecord
from proffer_stream.ingest.records import read_message
from proffer_stream.offers.config import (
    ConfigChange,
    ConfigCommand,
    ConfigOutcome,
    TenantConfigs,
    applied,
    config_key,
    decide_change,
)
from proffer_stream.worker.deadletters import DeadLetters, source_record

log = logging.getLogger(__name__)

STAGE = "tenant-config-agent"


class ConfigOutbox(Protocol):
    """Where the owner's decisions go: changes and outcomes, on their topics."""

    async def change(self, change: ConfigChange) -> None: ...

    async def outcome(self, outcome: ConfigOutcome) -> None: ...


class CaughtUp(Protocol):
    async def caught_up(self) -> None:
        """Return once everything on the tenant config topic now has been read."""
        ...


class ConfigOwner:
    """Decides the config commands of the keys this worker owns, one at a time."""

    def __init__(
        self,
        configs: TenantConfigs,
        follower: CaughtUp,
        outbox: ConfigOutbox,
        dead_letters: DeadLetters,
    ) -> None:
        self.configs = configs
        self.follower = follower
        self.outbox = outbox
        self.dead_letters = dead_letters

    async def process(self, batch: Sequence[EventT[bytes]]) -> None:
        """Decide each command in order; a bad record is dead-lettered and the rest go on."""
        await self.follower.caught_up()
        for event in batch:
            source = source_record(event.message)
            try:
                command = read_command(source.key, source.value)
            except BadRecord as error:
                await self.dead_letters.send(source, error)
                continue
            await self.decide(command, datetime.now(UTC))

    async def decide(self, command: ConfigCommand, now: datetime) -> ConfigOutcome:
        """Decide ``command`` (once: again, it answers as before) and publish the outcome."""
        made = self.configs.made_by(command.command_id)
        if made is not None:
            outcome = applied(command, made, now)
        else:
            current = self.configs.change(command.tenant_id, command.kind)
            outcome = decide_change(command, current, self.configs.default_rules, now)
            if outcome.change is not None:
                await self.outbox.change(outcome.change)
                self.configs.apply(outcome.change)
                log.info(
                    "tenant %s: %s version %d decided",
                    command.tenant_id,
                    command.kind,
                    outcome.version,
                )
        await self.outbox.outcome(outcome)
        return outcome


def read_command(key: bytes | None, value: bytes | None) -> ConfigCommand:
    """A record of ``proffer.tenant-config-commands``, or :class:`BadRecord`."""
    command = read_message(ConfigCommand, value)
    expected = config_key(command.tenant_id, command.kind)
    if key != expected:
        raise BadRecord(
            "wrong_key",
            f"key is {key!r}; it must be {expected!r} (<tenant_id>\\0<kind>) so that each"
            " tenant's rules and policy have one owner",
        )
    return command
