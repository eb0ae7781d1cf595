-- The catalog's commands (definition changes, members' grants and uses) are issued ids
-- too: a poll of /api/catalog/commands/{id} tells one still being decided (202) from
-- one never issued to the caller's tenant (404).
ALTER TABLE issued_commands DROP CONSTRAINT issued_commands_kind_check;
ALTER TABLE issued_commands ADD CONSTRAINT issued_commands_kind_check
    CHECK (kind IN ('request', 'offer_command', 'config_command', 'catalog_command'));
