-- Projection of proffer.tenant-config-outcomes: what became of each config change asked
-- through the API (the gateway waits for it).
CREATE TABLE config_commands (
    tenant_id    text NOT NULL,
    command_id   text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('rules', 'policy')),
    outcome      jsonb NOT NULL,
    occurred_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, command_id)
);

