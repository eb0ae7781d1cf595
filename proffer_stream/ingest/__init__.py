"""Ingest: the webhook body, the ``proffer.events`` message, and reading a record. No I/O."""
