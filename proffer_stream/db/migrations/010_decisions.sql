-- Projection of proffer.decisions: every decision made (with its trace), every reaction
-- to one, and the fulfilments of the options customers accepted.
CREATE TABLE decisions_made (
    tenant_id             text NOT NULL,
    decision_id           text NOT NULL,
    external_customer_id  text NOT NULL,
    surface               text NOT NULL,
    chosen                text,
    decided_at            timestamptz NOT NULL,
    decision              jsonb NOT NULL,
    PRIMARY KEY (tenant_id, decision_id)
);
CREATE INDEX decisions_made_customer
    ON decisions_made (tenant_id, external_customer_id, decided_at DESC);

CREATE TABLE decision_reactions (
    tenant_id       text NOT NULL,
    reaction_id     text NOT NULL,
    decision_id     text NOT NULL,
    reaction        text NOT NULL,
    option_id       text,
    fulfillment_id  text,
    at              timestamptz NOT NULL,
    event           jsonb NOT NULL,
    PRIMARY KEY (tenant_id, reaction_id)
);
CREATE INDEX decision_reactions_decision ON decision_reactions (tenant_id, decision_id, at);

-- A fulfilment is in_progress until its first completed or failed.
CREATE TABLE decision_fulfillments (
    tenant_id       text NOT NULL,
    fulfillment_id  text NOT NULL,
    decision_id     text NOT NULL,
    option_id       text NOT NULL,
    status          text NOT NULL,
    failure_reason  text,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, fulfillment_id)
);
