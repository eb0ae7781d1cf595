-- The customer list (GET /api/customers, the dashboard, customers due an offer) reads
-- customers most recently active first, ties by id: an index in exactly that order lets
-- a page be read from it. customers_last_seen (DESC, so nulls first, and no id) did not
-- serve it: every page sorted all the tenant's customers (23.5 ms at 100,000; 0.13 ms
-- read from this index).
CREATE INDEX customers_recent ON customers (tenant_id, last_seen_at DESC NULLS LAST, id);
DROP INDEX customers_last_seen;
