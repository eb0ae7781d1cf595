"""Proffer Stream: an event-driven offer engine on Kafka, Faust and PostgreSQL."""

__version__ = "0.1.0"
