-- A Spotify account authorised in a browser is not linked until its chat user confirms it in the chat
-- ("Link Spotify account X? Yes / No"): whoever opens a user's authorisation link could otherwise attach
-- their own account to that user. Until the answer the tokens wait here, encrypted like linked ones,
-- for as long as the question lasts; Yes moves them to spotify_tokens, No, expiry (Store.sweep) or the
-- user's deletion removes them. One pending account per user: a newer one replaces it.
CREATE TABLE spotify_pending_links (
    confirm_hash TEXT PRIMARY KEY,           -- sha256 hex of the random token the Yes/No buttons carry
    user_id      INTEGER NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    token        BLOB NOT NULL,              -- Fernet(JSON token_info)
    account      BLOB NOT NULL,              -- Fernet(JSON {"id", "display_name"})
    expires_at   REAL NOT NULL,              -- Unix time
    request      TEXT                        -- the chat request (a pasted address) that authorised it
);
CREATE INDEX spotify_pending_links_expiry ON spotify_pending_links (expires_at);
