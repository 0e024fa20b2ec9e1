-- PostgreSQL twin of sqlite/0025_group_overflow_number.sql; SQLite's
-- NOT GLOB '*[^0-9]*' is the regular expression !~ '[^0-9]' here.
-- A number (E.164 digits) a group's callers are placed to on a trunk when
-- their wait runs out (issue 10); NULL: none. A group overflows to a
-- group or to a number, never both.
-- The CHECK is named: one on two columns would be called agent_groups_check.
ALTER TABLE agent_groups ADD COLUMN overflow_number TEXT
    CONSTRAINT agent_groups_overflow_number_check
    CHECK (overflow_number IS NULL
           OR (length(overflow_number) BETWEEN 1 AND 32
               AND overflow_number !~ '[^0-9]'
               AND overflow_group IS NULL));
