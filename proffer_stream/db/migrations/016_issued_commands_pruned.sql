-- The gateway forgets the ids it issued after PROFFER_ISSUED_DAYS (db/issued.py
-- forget_issued_before): a poll for a decided id answers its outcome however old, so the
-- row only told "not decided yet" (202) from "never issued" (404). Rows are appended in
-- issued_at order, so a BRIN index finds the old ones without a scan, at a few pages.
CREATE INDEX issued_commands_issued_at ON issued_commands USING brin (issued_at);
