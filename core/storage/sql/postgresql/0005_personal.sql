-- Personal music: the mood journal (opt-in), song feedback, and the Spotify taste cache
-- (see sqlite/0005_personal.sql for what each column holds).

CREATE TABLE journal_settings (
    user_id    BIGINT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    enabled    INTEGER NOT NULL DEFAULT 0 CHECK (enabled IN (0, 1)),
    ask_token  TEXT,
    ask_until  DOUBLE PRECISION,
    changed_at DOUBLE PRECISION NOT NULL
);

CREATE TABLE journal_entries (
    id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    at      DOUBLE PRECISION NOT NULL,
    emotion TEXT NOT NULL,
    mood    TEXT NOT NULL DEFAULT '',
    policy  TEXT NOT NULL DEFAULT 'match',
    tracks  INTEGER NOT NULL DEFAULT 0,
    valence DOUBLE PRECISION,
    energy  DOUBLE PRECISION
);
CREATE INDEX journal_entries_user ON journal_entries (user_id, at);
CREATE INDEX journal_entries_at ON journal_entries (at);

CREATE TABLE track_feedback (
    user_id  BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    track_id TEXT NOT NULL,
    verdict  TEXT NOT NULL CHECK (verdict IN ('nope', 'like')),
    artists  TEXT NOT NULL DEFAULT '[]',
    at       DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (user_id, track_id)
);

CREATE TABLE spotify_taste (
    user_id    BIGINT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    artists    TEXT NOT NULL DEFAULT '[]',
    tracks     TEXT NOT NULL DEFAULT '[]',
    fetched_at DOUBLE PRECISION NOT NULL,
    ok         INTEGER NOT NULL DEFAULT 0 CHECK (ok IN (0, 1))
);
