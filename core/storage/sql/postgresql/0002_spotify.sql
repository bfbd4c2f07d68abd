-- Spotify: linked accounts (tokens encrypted with Fernet, never plain) and pending OAuth states.

CREATE TABLE spotify_tokens (
    user_id    BIGINT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    token      BYTEA NOT NULL,
    account    BYTEA NOT NULL,
    linked_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE spotify_oauth_states (
    state_hash TEXT PRIMARY KEY,             -- sha256 hex of the random state; the state itself is never stored
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at DOUBLE PRECISION NOT NULL,    -- Unix time
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX spotify_oauth_states_user ON spotify_oauth_states (user_id);
