-- Projection of proffer.tenant-config: each tenant's rule set and policy, latest version.
CREATE TABLE tenant_config (
    tenant_id   text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('rules', 'policy')),
    version     integer NOT NULL,
    change      jsonb NOT NULL,
    changed_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, kind)
);
