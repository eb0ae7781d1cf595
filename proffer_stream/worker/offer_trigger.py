"""Asking for an offer when a customer's updated profile fires a trigger rule."""

from __future__ import annotations

from datetime import datetime

import faust

from proffer_stream.core import metrics
from proffer_stream.core.identity import partition_key
from proffer_stream.offers.config import TenantConfigs
from proffer_stream.offers.triggers import triggered_request
from proffer_stream.signals.models import CustomerSignals


class OfferTrigger:
    """Evaluates the tenant's rules on an updated profile and queues the request one makes."""

    def __init__(self, requests_topic: faust.TopicT, configs: TenantConfigs) -> None:
        self.requests_topic = requests_topic
        self.configs = configs

    async def after_update(self, state: CustomerSignals, now: datetime) -> None:
        """Queue a request if a rule fires; Faust flushes it before committing the batch."""
        tenant = state.tenant_id
        request = triggered_request(
            state, self.configs.rules(tenant), self.configs.policy(tenant), now
        )
        if request is None:
            return
        await self.requests_topic.send(
            key=partition_key(state.tenant_id, state.external_id),
            value=request.model_dump_json().encode(),
        )
        metrics.OFFER_REQUESTS.labels(request.rule_id or "").inc()
