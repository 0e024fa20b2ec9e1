-- PostgreSQL twin of sqlite/0020_skills.sql.
-- Skills (issue 10): an agent's skills with levels, as "name:level" pairs
-- separated by commas (e.g. "es:5,vip:2"; levels 1 to 10), and the skill a
-- DID's calls require of the agent they are offered to (NULL: none).
ALTER TABLE seats ADD COLUMN skills TEXT NOT NULL DEFAULT ''
    CHECK (length(skills) <= 512);
ALTER TABLE dids ADD COLUMN skill TEXT
    CHECK (skill IS NULL OR length(skill) BETWEEN 1 AND 32);
