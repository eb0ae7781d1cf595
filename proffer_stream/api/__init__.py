"""The HTTP gateway: ingest onto Kafka, reads from PostgreSQL. Stateless; run many."""
