-- PostgreSQL twin of sqlite/0005_call_quality.sql.
-- How a call sounded, as the media plane measured it while it was connected
-- (issue 7). NULL when never measured: refused, unanswered, or no sample.
-- loss_pct, jitter_ms, rtt_ms: the call's last sample; mos: the mean MOS of
-- its samples; mos_min: the worst sample's MOS. An 8-byte float, as REAL is
-- in SQLite.
ALTER TABLE calls ADD COLUMN loss_pct DOUBLE PRECISION;
ALTER TABLE calls ADD COLUMN jitter_ms DOUBLE PRECISION;
ALTER TABLE calls ADD COLUMN rtt_ms DOUBLE PRECISION;
ALTER TABLE calls ADD COLUMN mos DOUBLE PRECISION;
ALTER TABLE calls ADD COLUMN mos_min DOUBLE PRECISION;
