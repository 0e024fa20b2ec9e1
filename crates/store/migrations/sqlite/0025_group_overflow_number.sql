-- A number (E.164 digits) a group's callers are placed to on a trunk when
-- their wait runs out (issue 10); NULL: none. A group overflows to a
-- group or to a number, never both.
ALTER TABLE agent_groups ADD COLUMN overflow_number TEXT
    CHECK (overflow_number IS NULL
           OR (length(overflow_number) BETWEEN 1 AND 32
               AND overflow_number NOT GLOB '*[^0-9]*'
               AND overflow_group IS NULL));
