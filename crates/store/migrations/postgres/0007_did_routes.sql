-- PostgreSQL twin of sqlite/0007_did_routes.sql.
-- Number routing (issue 8): a DID goes to its group (group_id, as before),
-- is forwarded to a number through the trunks (forward_to), or is refused
-- with a SIP status (reject_code). At most one of the three is used, in
-- that order of precedence: reject_code, forward_to, group_id.
ALTER TABLE dids ADD COLUMN forward_to TEXT;
ALTER TABLE dids ADD COLUMN reject_code BIGINT;
-- A forwarded call's record: the number it was forwarded to.
ALTER TABLE calls ADD COLUMN forwarded_to TEXT;
