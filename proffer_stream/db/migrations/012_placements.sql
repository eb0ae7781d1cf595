-- Placements: integrations are catalog definitions (proffer.catalog, keyed
-- <tenant>\0integration\0<id>) projected at their highest version; a decision made at
-- a placement names its flow, so that the flow's earlier choices are read with the
-- customer in the decision's one query (a flow never shows an offer twice).
CREATE TABLE catalog_integrations (
    tenant_id    text        NOT NULL,
    id           bigint      NOT NULL,
    version      integer     NOT NULL,
    definition   jsonb       NOT NULL,  -- the IntegrationDefinition
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    archived_at  timestamptz,
    PRIMARY KEY (tenant_id, id)
);

ALTER TABLE decisions_made ADD COLUMN flow_id text;
CREATE INDEX decisions_made_flow ON decisions_made (tenant_id, flow_id)
    WHERE flow_id IS NOT NULL;
