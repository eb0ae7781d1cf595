"""Asking the offers agent: for an offer when a rule fires, and to record what the
customer did with one (seen, clicked, redeemed)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import faust

from proffer_stream.core import metrics
from proffer_stream.core.identity import partition_key
from proffer_stream.ingest.models import NormalizedEvent
from proffer_stream.offers.behaviour import offer_commands
from proffer_stream.offers.config import TenantConfigs
from proffer_stream.offers.triggers import triggered_request
from proffer_stream.signals.models import CustomerSignals


class OfferTrigger:
    """Evaluates the tenant's rules on an updated profile, and forwards offer engagement
    and redemptions, as messages on ``proffer.offer-requests`` keyed like the customer."""

    def __init__(self, requests_topic: faust.TopicT, configs: TenantConfigs) -> None:
        self.requests_topic = requests_topic
        self.configs = configs

    async def after_update(
        self, state: CustomerSignals, counted: Sequence[NormalizedEvent], now: datetime
    ) -> None:
        """Queue what the update asks of the offers agent; Faust flushes it before
        committing the batch."""
        tenant = state.tenant_id
        commands = offer_commands(tenant, state.external_id, counted)
        request = triggered_request(
            state,
            self.configs.rules(tenant),
            self.configs.policy(tenant),
            now,
            fired_by=counted[-1].id if counted else "",
        )
        if not commands and request is None:  # most updates: nothing to send
            return
        key = partition_key(tenant, state.external_id)
        for command in commands:
            await self.requests_topic.send(key=key, value=command.model_dump_json().encode())
            metrics.OFFER_COMMANDS.labels(command.action).inc()
        if request is not None:
            await self.requests_topic.send(key=key, value=request.model_dump_json().encode())
            metrics.OFFER_REQUESTS.labels(request.rule_id or "").inc()
