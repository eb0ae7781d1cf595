-- Projection of proffer.offers: offers (latest version), their events, and every decision.
CREATE TABLE offers (
    tenant_id             text NOT NULL,
    id                    bigint NOT NULL,
    customer_id           bigint NOT NULL,
    external_customer_id  text NOT NULL,
    status                text NOT NULL,
    channel               text NOT NULL,
    offer_type            text NOT NULL,
    rule_id               text,
    request_id            text NOT NULL,
    version               integer NOT NULL,
    generated_at          timestamptz NOT NULL,
    expires_at            timestamptz NOT NULL,
    offer                 jsonb NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX offers_newest ON offers (tenant_id, generated_at DESC, id DESC);
CREATE INDEX offers_customer ON offers (tenant_id, customer_id, generated_at DESC);

-- Every lifecycle event of an offer, once (by event id).
CREATE TABLE offer_events (
    tenant_id    text NOT NULL,
    event_id     text NOT NULL,
    offer_id     bigint,
    event_type   text NOT NULL,
    version      integer NOT NULL,
    occurred_at  timestamptz NOT NULL,
    cause        text NOT NULL,
    event        jsonb NOT NULL,
    PRIMARY KEY (tenant_id, event_id)
);
CREATE INDEX offer_events_offer ON offer_events (tenant_id, offer_id, version);

-- Every decision on an offer request, with its trace: an offer, or why none.
CREATE TABLE decisions (
    tenant_id    text NOT NULL,
    request_id   text NOT NULL,
    customer_id  bigint NOT NULL,
    offer_id     bigint,
    outcome      text NOT NULL,
    decided_at   timestamptz NOT NULL,
    trace        jsonb NOT NULL,
    PRIMARY KEY (tenant_id, request_id)
);
CREATE INDEX decisions_customer ON decisions (tenant_id, customer_id, decided_at DESC);
CREATE INDEX decisions_offer ON decisions (tenant_id, offer_id);
