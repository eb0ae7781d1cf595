"""What the offers agent reads of the catalog: the definitions this worker follows in
memory (``proffer.catalog``), to choose the catalog offer a rule's hints give, and the
member's time zone for the catalog offer's periodic limits."""

from __future__ import annotations

from datetime import datetime

from proffer_stream.catalog.generated import Choice, choose
from proffer_stream.catalog.store import CatalogStore
from proffer_stream.catalog.views import member_zone
from proffer_stream.offers.rules import WriterHints
from proffer_stream.signals.models import CustomerProfile


class CatalogLink:
    """The catalog as this worker follows it, with the deployment's defaults."""

    def __init__(self, store: CatalogStore, language: str, timezone: str) -> None:
        self.store = store
        self.language = language
        self.default_timezone = timezone

    def choose(
        self, tenant_id: str, hints: WriterHints, profile: CustomerProfile, now: datetime
    ) -> Choice:
        """The catalog offer the hints give this customer now, if any (see
        :func:`~proffer_stream.catalog.generated.choose`)."""
        return choose(
            self.store.offers(tenant_id),
            self.store.collections(tenant_id),
            hints,
            profile,
            now,
            self.language,
        )

    def timezone(self, profile: CustomerProfile | None) -> str:
        """The member's time zone: the profile's ``metadata.timezone`` when it is one,
        else the deployment's default."""
        return member_zone(profile, self.default_timezone)
