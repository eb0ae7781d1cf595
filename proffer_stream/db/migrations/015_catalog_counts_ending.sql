-- Readers see the stock that grants which ended give back as of their own now, before
-- the owner's next command releases it (proffer_stream/catalog/models.py reserved_as_of):
-- the owner's events carry, with the counts, the buckets of reservations that can end
-- (when each is released if unused, and how many units it holds), projected with them.
ALTER TABLE catalog_counts ADD COLUMN ending jsonb;  -- null: projected before it was kept
