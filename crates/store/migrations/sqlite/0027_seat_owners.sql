-- Where a node can be reached by the others (issue 12): its WebSocket URL
-- (tabs on other nodes are relayed there) and its SIP URI (inbound calls
-- are redirected there). Written by the node at its start.
ALTER TABLE nodes ADD COLUMN ws_url TEXT;
ALTER TABLE nodes ADD COLUMN sip_uri TEXT;

-- The node that holds an agent (its status, its calls, its audio): the
-- node where its first tab opened. Tabs opened on other nodes are relayed
-- to it, so two nodes never decide for one agent. A gone, silent or
-- draining owner is replaced by the next node a tab opens on.
CREATE TABLE seat_owners (
    seat_id   INTEGER PRIMARY KEY REFERENCES seats(id) ON DELETE CASCADE,
    node      TEXT NOT NULL REFERENCES nodes(name),
    since_ms  INTEGER NOT NULL
);
CREATE INDEX seat_owners_node ON seat_owners (node);
