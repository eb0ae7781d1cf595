-- A customer's command outcomes, found through their offers: what a worker restores of
-- the commands it decided when its broker lost the offers' log.
CREATE INDEX IF NOT EXISTS offer_commands_offer ON offer_commands (tenant_id, offer_id);
