-- Users, chats, per-user settings and face embeddings. No photos are ever stored.

CREATE TABLE users (
    id           INTEGER PRIMARY KEY,
    platform     TEXT NOT NULL,              -- telegram, discord, console, cli
    external_id  TEXT NOT NULL,              -- the platform's user id (cli: the name given)
    display_name TEXT NOT NULL DEFAULT '',
    created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (platform, external_id)
);

CREATE TABLE chats (
    id          INTEGER PRIMARY KEY,
    platform    TEXT NOT NULL,
    external_id TEXT NOT NULL,               -- chat id, or guild id on Discord: the matching scope
    title       TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (platform, external_id)
);

CREATE TABLE user_settings (
    user_id     INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    track_count INTEGER NOT NULL DEFAULT 10 CHECK (track_count BETWEEN 1 AND 50),
    mood_policy TEXT NOT NULL DEFAULT 'match' CHECK (mood_policy IN ('match', 'lift')),
    updated_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- One row per enrolled face sample. The model id keeps galleries of different FaceNet weights apart.
CREATE TABLE face_embeddings (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    chat_id    INTEGER NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    model      TEXT NOT NULL,
    dim        INTEGER NOT NULL,
    vector     BLOB NOT NULL CHECK (length(vector) = 4 * dim),   -- float32, little-endian
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE INDEX face_embeddings_scope ON face_embeddings (chat_id, model);
CREATE INDEX face_embeddings_user ON face_embeddings (user_id);
