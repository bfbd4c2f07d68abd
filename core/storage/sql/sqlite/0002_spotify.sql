-- Spotify: linked accounts (tokens encrypted with Fernet, never plain) and pending OAuth states.
-- Both reference users (id) ON DELETE CASCADE, so /forget removes them with the user.

CREATE TABLE spotify_tokens (
    user_id    INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    token      BLOB NOT NULL,                -- Fernet(JSON token_info: access and refresh token, expiry)
    account    BLOB NOT NULL,                -- Fernet(JSON {"id", "display_name"} of the Spotify account)
    linked_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- One row per authorisation URL handed out: single-use (deleted when used), bound to one user, expiring.
CREATE TABLE spotify_oauth_states (
    state_hash TEXT PRIMARY KEY,             -- sha256 hex of the random state; the state itself is never stored
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at REAL NOT NULL,                -- Unix time
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE INDEX spotify_oauth_states_user ON spotify_oauth_states (user_id);
