-- PostgreSQL twin of sqlite/0027_seat_owners.sql: where nodes are reached,
-- and the node that holds each agent.
ALTER TABLE nodes ADD COLUMN ws_url TEXT;
ALTER TABLE nodes ADD COLUMN sip_uri TEXT;

CREATE TABLE seat_owners (
    seat_id   BIGINT PRIMARY KEY REFERENCES seats(id) ON DELETE CASCADE,
    node      TEXT NOT NULL REFERENCES nodes(name),
    since_ms  BIGINT NOT NULL
);
CREATE INDEX seat_owners_node ON seat_owners (node);
