"""Following ``proffer.tenant-config``: every tenant's rules and policy, on every worker.

Each worker reads the whole compacted topic into a :class:`TenantConfigs` and then
follows it (a :class:`~proffer_stream.kafka.follower.TopicFollower`), so a change is in
force everywhere within a fetch. The topic is the source of truth (an embedded broker that
lost it gets it back from PostgreSQL before any worker starts:
:func:`proffer_stream.local.restore.restore_tenant_config`). The agents wait for
:attr:`ConfigFollower.ready` (the topic read to its end once) before their first batch,
so no event is judged by stale rules at start.
"""

from __future__ import annotations

import logging

from pydantic import ValidationError

from proffer_stream.core.settings import Settings
from proffer_stream.kafka.follower import TopicFollower
from proffer_stream.kafka.topics import topics_for
from proffer_stream.offers.config import ConfigChange, TenantConfigs

log = logging.getLogger(__name__)


class ConfigFollower(TopicFollower):
    """Keeps ``configs`` at the latest change of every tenant's rules and policy."""

    def __init__(self, configs: TenantConfigs, settings: Settings) -> None:
        super().__init__(settings, topics_for(settings).tenant_config.name, "tenant config")
        self.configs = configs

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        if value is None:
            return
        try:
            change = ConfigChange.model_validate_json(value)
        except ValidationError as exc:  # the gateway validates; this is another producer's
            log.warning("skipped a tenant config record that does not parse: %s", exc)
            return
        if self.configs.apply(change) and self.ready.is_set():
            log.info(
                "tenant %s: %s version %d in force", change.tenant_id, change.kind, change.version
            )
