-- Personal music: the mood journal (opt-in), song feedback, and the Spotify taste cache. Every row
-- belongs to a user and goes with them (ON DELETE CASCADE); times are Unix seconds (REAL).

-- /journal on|off. A row exists once the user was asked; the journal records only while enabled = 1.
-- ask_token is the random token of the open consent question's Yes/No buttons (NULL when none is open).
CREATE TABLE journal_settings (
    user_id    INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    enabled    INTEGER NOT NULL DEFAULT 0 CHECK (enabled IN (0, 1)),
    ask_token  TEXT,
    ask_until  REAL,
    changed_at REAL NOT NULL
);

-- One row per photo reply while the journal is on: the emotion the songs followed and the mood of the
-- songs sent (never the photo). Swept after 30 days; /journal off deletes them at once.
CREATE TABLE journal_entries (
    id      INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    at      REAL NOT NULL,
    emotion TEXT NOT NULL,
    mood    TEXT NOT NULL DEFAULT '',            -- the music mood the songs matched (calm, happy, ...)
    policy  TEXT NOT NULL DEFAULT 'match',
    tracks  INTEGER NOT NULL DEFAULT 0,          -- songs sent
    valence REAL,                                -- mean valence of the songs sent (NULL: none sent)
    energy  REAL                                 -- mean energy of the songs sent
);
CREATE INDEX journal_entries_user ON journal_entries (user_id, at);
CREATE INDEX journal_entries_at ON journal_entries (at);

-- "Not this one" (nope: never sent to this user again) and "more like this" (like: its artists are
-- ranked up within the mood), one verdict per user and track; the latest press wins.
CREATE TABLE track_feedback (
    user_id  INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    track_id TEXT NOT NULL,
    verdict  TEXT NOT NULL CHECK (verdict IN ('nope', 'like')),
    artists  TEXT NOT NULL DEFAULT '[]',         -- JSON list of the track's artists
    at       REAL NOT NULL,
    PRIMARY KEY (user_id, track_id)
);

-- A linked user's Spotify top artists and tracks, read at most once a day (fetched_at: the last
-- attempt, ok = 0 when it failed). Deleted with the Spotify link.
CREATE TABLE spotify_taste (
    user_id    INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    artists    TEXT NOT NULL DEFAULT '[]',       -- JSON list of artist names, most listened first
    tracks     TEXT NOT NULL DEFAULT '[]',       -- JSON list of top track ids
    fetched_at REAL NOT NULL,
    ok         INTEGER NOT NULL DEFAULT 0 CHECK (ok IN (0, 1))
);
