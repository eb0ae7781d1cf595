-- The dashboard (proffer_stream/api/dashboard).
-- One-time links that sign a browser in with a key (the `up` banner prints one): only the
-- token's hash is kept; a link works once, before it expires.
CREATE TABLE dashboard_sign_in_tokens (
    token_hash  text PRIMARY KEY,
    key_hash    text NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);

-- The overview's charts over a week or a month read every offer of the window: with the
-- columns they need in the index, an index-only scan reads a tenth of the pages the heap
-- takes (the heap rows carry each offer's JSON). 100,000 offers in a month: stats
-- 180 -> 85 ms, offers per day 190 -> 30 ms (bench/dashboard.py).
CREATE INDEX offers_stats ON offers (tenant_id, generated_at)
    INCLUDE (rule_id, status, channel, approved_at, sent_at, seen_at, clicked_at, redeemed_at,
             redeemed_amount);
