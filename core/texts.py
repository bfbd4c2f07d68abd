"""What the bot says in words that do not depend on a photo: welcome, help, privacy."""

from __future__ import annotations

WELCOME = (
    "Hi! I'm moodtunes. Send me a selfie and I'll tell you how you look, and answer with songs "
    "that fit the mood.\n\n"
    "I can also learn to recognise you (/enroll), make Spotify playlists of the songs "
    "(/linkspotify), and forget everything about you (/forget). /help lists everything."
)

HELP = (
    "Send a photo: I find the faces, name the people enrolled in this chat, read each face's "
    "emotion and pick songs for the mood.\n\n"
    "/enroll - let me recognise you in this chat (asks your consent, then takes one selfie)\n"
    "/tracks N - how many songs I send, 1 to 50 (now {tracks})\n"
    "/linkspotify - link your Spotify account to get real playlists\n"
    "/unlinkspotify - remove the link\n"
    "/forget - delete everything I keep about you\n"
    "/help - this message\n\n"
    "What I keep: never your photos. If you /enroll, a numeric fingerprint of your face (an "
    "embedding), used only in the chat where you enrolled; your /tracks setting; and, if you link "
    "Spotify, an encrypted token to make playlists. /forget deletes all of it at once."
)

CONSENT = (
    "Before I learn your face: I will keep a numeric fingerprint of it (never the photo), only to "
    "recognise you in this chat. Face recognition only personalises the reply; it never unlocks "
    "anything. You can delete it any time with /forget. Do you agree?"
)

SEND_SELFIE = "Great! Now send me a selfie: just you, face to the camera, in good light."
ENROLL_CANCELLED = "OK, I won't learn your face. Nothing was stored."
FORGET_CONFIRM = (
    "This deletes everything I keep about you: your face samples in every chat, your settings and "
    "your Spotify link. Are you sure?"
)
FORGET_CANCELLED = "OK, nothing was deleted."
NO_FACE = (
    "I couldn't find a face in that photo. Try one where a face is clearly visible, facing the "
    "camera, in good light."
)
OOPS = "Something went wrong on my side while reading that photo; please try again in a moment."
NO_CATALOG = (
    "I have no music catalog configured, so no songs this time (the operator can set "
    "MOODTUNES_CATALOG; see `moodtunes catalog fetch`)."
)
EXPIRED = "That result is too old for its buttons; send the photo again."
NOT_YOURS = "Those buttons belong to the person who sent the photo."
