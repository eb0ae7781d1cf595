-- Projection of the Kafka topics (customers, events) plus the API keys.
CREATE TABLE api_keys (
    id          bigserial PRIMARY KEY,
    tenant_id   text NOT NULL,
    name        text NOT NULL,
    key_prefix  text NOT NULL,
    key_hash    text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);

-- One row per customer: the latest snapshot of the signals table (its changelog).
CREATE TABLE customers (
    tenant_id      text NOT NULL,
    id             bigint NOT NULL,
    external_id    text NOT NULL,
    email          text,
    name           text,
    metadata       jsonb NOT NULL DEFAULT '{}',
    event_count    bigint NOT NULL DEFAULT 0,
    first_seen_at  timestamptz,
    last_seen_at   timestamptz,
    signals        jsonb NOT NULL,
    updated_at     timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX customers_external_id ON customers (tenant_id, external_id);
CREATE INDEX customers_last_seen ON customers (tenant_id, last_seen_at DESC);

-- Every event accepted, once (upserted by event id).
CREATE TABLE events (
    tenant_id    text NOT NULL,
    customer_id  bigint NOT NULL,
    id           text NOT NULL,
    type         text NOT NULL,
    data         jsonb NOT NULL,
    occurred_at  timestamptz NOT NULL,
    received_at  timestamptz NOT NULL,
    stored_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (tenant_id, customer_id, id)
);
CREATE INDEX events_customer_time ON events (tenant_id, customer_id, occurred_at DESC);
