-- The catalog's projection (topics are the source of truth, DESIGN invariant 1).
-- proffer.catalog -> catalog_offers, catalog_collections: each definition at its highest
-- version. proffer.catalog-events -> catalog_activity (every decision once, by its id),
-- catalog_counts and catalog_members (the counts the owner computed, at the highest
-- per-offer sequence number seen, so a replay or a late batch never moves them back).

CREATE TABLE catalog_offers (
    tenant_id    text        NOT NULL,
    id           bigint      NOT NULL,
    version      integer     NOT NULL,
    type         text        NOT NULL,
    status       text        NOT NULL,
    definition   jsonb       NOT NULL,  -- the CatalogDefinition as the topic carries it
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    archived_at  timestamptz,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE catalog_collections (
    tenant_id    text        NOT NULL,
    id           bigint      NOT NULL,
    version      integer     NOT NULL,
    definition   jsonb       NOT NULL,  -- the CollectionDefinition
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    archived_at  timestamptz,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE catalog_counts (
    tenant_id       text    NOT NULL,
    offer_id        bigint  NOT NULL,
    seq             bigint  NOT NULL,
    uses_count      integer NOT NULL DEFAULT 0,
    grants_count    integer NOT NULL DEFAULT 0,
    reserved_count  integer NOT NULL DEFAULT 0,
    likes_count     integer NOT NULL DEFAULT 0,
    seen_count      integer NOT NULL DEFAULT 0,
    clicked_count   integer NOT NULL DEFAULT 0,
    refusals_count  integer NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, offer_id)
);

CREATE TABLE catalog_members (
    tenant_id             text        NOT NULL,
    offer_id              bigint      NOT NULL,
    external_customer_id  text        NOT NULL,
    seq                   bigint      NOT NULL,  -- of the offer's last event about this member
    uses                  integer     NOT NULL DEFAULT 0,
    grants                integer     NOT NULL DEFAULT 0,
    liked                 boolean     NOT NULL DEFAULT false,
    last_granted_at       timestamptz,
    last_used_at          timestamptz,
    PRIMARY KEY (tenant_id, offer_id, external_customer_id)
);
CREATE INDEX catalog_members_by_member ON catalog_members (tenant_id, external_customer_id);

CREATE TABLE catalog_activity (
    tenant_id             text        NOT NULL,
    event_id              text        NOT NULL,  -- the command's id
    target                text        NOT NULL,  -- offer, or collection (definitions only)
    offer_id              bigint      NOT NULL,  -- the offer's, or the collection's id
    external_customer_id  text,                  -- null for definitions
    kind                  text        NOT NULL,  -- defined, granted, used, refused, ...
    action                text        NOT NULL,
    reason                text,
    at                    timestamptz NOT NULL,
    seq                   bigint      NOT NULL,
    event                 jsonb       NOT NULL,  -- the CatalogEvent
    PRIMARY KEY (tenant_id, event_id)
);
CREATE INDEX catalog_activity_by_member
    ON catalog_activity (tenant_id, offer_id, external_customer_id, at);
