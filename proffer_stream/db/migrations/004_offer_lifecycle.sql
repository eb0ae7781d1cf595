-- The offer lifecycle: when each offer moved on, and what redeemed it (for stats).
ALTER TABLE offers
    ADD COLUMN approved_at      timestamptz,
    ADD COLUMN sent_at          timestamptz,
    ADD COLUMN seen_at          timestamptz,
    ADD COLUMN clicked_at       timestamptz,
    ADD COLUMN redeemed_at      timestamptz,
    ADD COLUMN expired_at       timestamptz,
    ADD COLUMN redeemed_amount  numeric;
CREATE INDEX offers_status ON offers (tenant_id, status);

-- The outcome of each command sent through the API (PATCH /api/offers/{id}), for the
-- gateway that waits for it: applied (the offer's status and version after it) or
-- rejected (why, and where the offer may move instead).
CREATE TABLE offer_commands (
    tenant_id    text NOT NULL,
    command_id   text NOT NULL,
    offer_id     bigint NOT NULL,
    outcome      text NOT NULL,
    status       text,
    version      integer NOT NULL,
    reason       text,
    allowed      text[] NOT NULL,
    occurred_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, command_id)
);
