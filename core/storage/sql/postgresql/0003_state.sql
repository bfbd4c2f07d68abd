-- State that outlives a process (see sqlite/0003_state.sql for what each table is for).

ALTER TABLE chats ADD COLUMN owner_user_id BIGINT REFERENCES users (id) ON DELETE CASCADE;
ALTER TABLE chats ADD COLUMN gallery_generation BIGINT NOT NULL DEFAULT 0;
CREATE INDEX chats_owner ON chats (owner_user_id);

CREATE TABLE reply_results (
    token      TEXT PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    chat_id    BIGINT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    emotion    TEXT NOT NULL,
    policy     TEXT NOT NULL CHECK (policy IN ('match', 'lift')),
    count      INTEGER NOT NULL CHECK (count BETWEEN 1 AND 50),
    shown      TEXT NOT NULL DEFAULT '',
    tracks     TEXT NOT NULL DEFAULT '',
    version    INTEGER NOT NULL DEFAULT 0,
    created_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX reply_results_expiry ON reply_results (expires_at);
CREATE INDEX reply_results_user ON reply_results (user_id);

CREATE TABLE result_playlists (
    token      TEXT NOT NULL REFERENCES reply_results (token) ON DELETE CASCADE,
    tracks_key TEXT NOT NULL,
    url        TEXT,
    claimed_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (token, tracks_key)
);

CREATE TABLE conversations (
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    chat_id    BIGINT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    step       TEXT NOT NULL,
    model      TEXT,
    embedding  BYTEA,
    request    TEXT,                            -- the platform request that made this step
    expires_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (user_id, chat_id)
);
CREATE INDEX conversations_expiry ON conversations (expires_at);

CREATE TABLE rate_events (
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind    TEXT NOT NULL,
    at      DOUBLE PRECISION NOT NULL
);
CREATE INDEX rate_events_user ON rate_events (user_id, kind, at);
CREATE INDEX rate_events_at ON rate_events (at);

CREATE TABLE processed_updates (
    platform    TEXT NOT NULL,
    update_id   TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('working', 'done')),
    worker      TEXT NOT NULL,
    progress    INTEGER NOT NULL DEFAULT 0,            -- messages of the answer already sent
    lease_until DOUBLE PRECISION NOT NULL,
    updated_at  DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (platform, update_id)
);
CREATE INDEX processed_updates_age ON processed_updates (updated_at);

ALTER TABLE spotify_oauth_states ADD COLUMN notify TEXT NOT NULL DEFAULT '';
