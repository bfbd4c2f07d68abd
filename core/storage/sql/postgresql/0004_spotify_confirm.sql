-- Spotify accounts authorised in a browser, waiting for their chat user's confirmation
-- (see sqlite/0004_spotify_confirm.sql).

CREATE TABLE spotify_pending_links (
    confirm_hash TEXT PRIMARY KEY,
    user_id      BIGINT NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    token        BYTEA NOT NULL,
    account      BYTEA NOT NULL,
    expires_at   DOUBLE PRECISION NOT NULL,
    request      TEXT                        -- the chat request (a pasted address) that authorised it
);
CREATE INDEX spotify_pending_links_expiry ON spotify_pending_links (expires_at);
