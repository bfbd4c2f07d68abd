-- State that outlives a process, so any worker can answer any later message or button press, and
-- a restart breaks nothing. Every row that belongs to a user goes with the user (ON DELETE CASCADE);
-- every row with an expires_at is swept once expired. Times are Unix seconds (REAL).

-- User ids are never reused: an id of a deleted user must not fall to the next new user while an
-- enrolment or a Spotify link of the deleted one is still in flight (AUTOINCREMENT).
CREATE TABLE users_new (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    platform     TEXT NOT NULL,
    external_id  TEXT NOT NULL,
    display_name TEXT NOT NULL DEFAULT '',
    created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (platform, external_id)
);
INSERT INTO users_new (id, platform, external_id, display_name, created_at)
    SELECT id, platform, external_id, display_name, created_at FROM users;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;

-- A private chat belongs to its user and goes with them; the gallery generation changes with every
-- enrolment or deletion in the chat, so cached galleries in every worker know when they are stale.
ALTER TABLE chats ADD COLUMN owner_user_id INTEGER REFERENCES users (id) ON DELETE CASCADE;
ALTER TABLE chats ADD COLUMN gallery_generation INTEGER NOT NULL DEFAULT 0;
CREATE INDEX chats_owner ON chats (owner_user_id);

-- What a photo reply's buttons act on ("More tracks", "Lift my mood", "Make a Spotify playlist").
CREATE TABLE reply_results (
    token      TEXT PRIMARY KEY,                -- random, carried in the buttons' callback data
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    chat_id    INTEGER NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    emotion    TEXT NOT NULL,
    policy     TEXT NOT NULL CHECK (policy IN ('match', 'lift')),
    count      INTEGER NOT NULL CHECK (count BETWEEN 1 AND 50),
    shown      TEXT NOT NULL DEFAULT '',        -- track ids shown in this chain, space-separated
    tracks     TEXT NOT NULL DEFAULT '',        -- the latest list's track ids (the playlist button's)
    version    INTEGER NOT NULL DEFAULT 0,      -- optimistic concurrency: two presses never lose one
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX reply_results_expiry ON reply_results (expires_at);
CREATE INDEX reply_results_user ON reply_results (user_id);

-- One playlist per track list of a result, whichever worker gets the press (url NULL while making).
CREATE TABLE result_playlists (
    token      TEXT NOT NULL REFERENCES reply_results (token) ON DELETE CASCADE,
    tracks_key TEXT NOT NULL,                   -- sha256 of the track ids
    url        TEXT,
    claimed_at REAL NOT NULL,
    PRIMARY KEY (token, tracks_key)
);

-- Open /enroll and /forget conversations. An enrolment photo given with /enroll waits here only as
-- its face embedding (never the photo), for no longer than the question's expiry.
CREATE TABLE conversations (
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    chat_id    INTEGER NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    step       TEXT NOT NULL,
    model      TEXT,
    embedding  BLOB,
    request    TEXT,                            -- the platform request that made this step
    expires_at REAL NOT NULL,
    PRIMARY KEY (user_id, chat_id)
);
CREATE INDEX conversations_expiry ON conversations (expires_at);

-- Sliding-window rate limits, one row per counted event.
CREATE TABLE rate_events (
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind    TEXT NOT NULL,
    at      REAL NOT NULL
);
CREATE INDEX rate_events_user ON rate_events (user_id, kind, at);
CREATE INDEX rate_events_at ON rate_events (at);

-- Platform updates being handled or handled: a redelivered update is answered once.
CREATE TABLE processed_updates (
    platform    TEXT NOT NULL,
    update_id   TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('working', 'done')),
    worker      TEXT NOT NULL,
    progress    INTEGER NOT NULL DEFAULT 0,            -- messages of the answer already sent
    lease_until REAL NOT NULL,                  -- a working claim older than this was abandoned
    updated_at  REAL NOT NULL,
    PRIMARY KEY (platform, update_id)
);
CREATE INDEX processed_updates_age ON processed_updates (updated_at);

-- Where to tell the user that a Spotify link made through the callback page finished.
ALTER TABLE spotify_oauth_states ADD COLUMN notify TEXT NOT NULL DEFAULT '';
