"""Running locally: embedded broker and PostgreSQL, the process supervisor, `up`."""
