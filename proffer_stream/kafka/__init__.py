"""Kafka: every topic's name and config, their creation, dead letters, and schemas/."""
