-- Users, chats, per-user settings and face embeddings. No photos are ever stored.

CREATE TABLE users (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,   -- never reused
    platform     TEXT NOT NULL,
    external_id  TEXT NOT NULL,
    display_name TEXT NOT NULL DEFAULT '',
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (platform, external_id)
);

CREATE TABLE chats (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    platform    TEXT NOT NULL,
    external_id TEXT NOT NULL,
    title       TEXT NOT NULL DEFAULT '',
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (platform, external_id)
);

CREATE TABLE user_settings (
    user_id     BIGINT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    track_count INTEGER NOT NULL DEFAULT 10 CHECK (track_count BETWEEN 1 AND 50),
    mood_policy TEXT NOT NULL DEFAULT 'match' CHECK (mood_policy IN ('match', 'lift')),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE face_embeddings (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    chat_id    BIGINT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    model      TEXT NOT NULL,
    dim        INTEGER NOT NULL,
    vector     BYTEA NOT NULL CHECK (octet_length(vector) = 4 * dim),   -- float32, little-endian
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX face_embeddings_scope ON face_embeddings (chat_id, model);
CREATE INDEX face_embeddings_user ON face_embeddings (user_id);
