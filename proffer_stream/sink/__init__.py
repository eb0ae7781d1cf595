"""The sink: projects the topics into PostgreSQL, idempotently. One projection per topic."""
