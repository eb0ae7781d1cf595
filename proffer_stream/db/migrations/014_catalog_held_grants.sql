-- Grants that end release the stock they hold (proffer_stream/catalog/limits.py): the
-- owner's events carry, with the counts, how many grants were released unused, and with
-- each member's standing the grants they hold (when each may be used until and when its
-- unit is released). Both are projected so that an owner restored from PostgreSQL after
-- the broker lost its changelog rebuilds its buckets of reservations from its members.
ALTER TABLE catalog_counts ADD COLUMN released_count integer NOT NULL DEFAULT 0;
ALTER TABLE catalog_members ADD COLUMN held jsonb;  -- null: projected before it was kept
