-- Projection of proffer.tenant-config: every version of each tenant's rule set and policy
-- (tenant_config keeps the one in force). Keyed like the changes themselves, so a replay
-- writes the same rows; the dashboard reads a kind's newest first down this key.
CREATE TABLE tenant_config_versions (
    tenant_id   text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('rules', 'policy')),
    version     integer NOT NULL,
    change      jsonb NOT NULL,  -- the ConfigChange
    changed_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, kind, version)
);

-- The versions in force before this table existed are its first rows.
INSERT INTO tenant_config_versions (tenant_id, kind, version, change, changed_at)
SELECT tenant_id, kind, version, change, changed_at FROM tenant_config;
