"""What the bot says, in one place: every sentence a user can read, on every platform.

Sentences with ``{placeholders}`` are filled with ``str.format``. The help text is generated from the
command table (:mod:`core.app.commands`), with :data:`HELP_INTRO` and :data:`PRIVACY` around it.
"""

from __future__ import annotations

WELCOME = (
    "Hi! I'm moodtunes. Send me a selfie and I'll tell you how you look, and answer with songs "
    "that fit the mood.\n\n"
    "I can also learn to recognise you (/enroll), make Spotify playlists of the songs "
    "(/linkspotify), and forget everything about you (/forget). /help lists everything."
)

HELP_INTRO = (
    "Send a photo: I find the faces, name the people enrolled in this chat, read each face's "
    "emotion and pick songs for the mood."
)

PRIVACY = (
    "What I keep: never your photos. If you /enroll, a numeric fingerprint of your face (an "
    "embedding), used only in the chat where you enrolled; your /tracks setting; the songs you rate "
    '("not this one", "more like this"); if you turn the /journal on, each photo\'s emotion and the '
    "mood of the songs I sent, for 30 days; and, if you link Spotify, an encrypted token to make "
    "playlists and your top artists (read once a day). /forget deletes all of it at once."
)

CONSENT = (
    "Before I learn your face: I will keep a numeric fingerprint of it (never the photo), only to "
    "recognise you in this chat. Face recognition only personalises the reply; it never unlocks "
    "anything. You can delete it any time with /forget. Do you agree?"
)

SEND_SELFIE = "Great! Now send me a selfie: just you, face to the camera, in good light."
ENROLL_CANCELLED = "OK, I won't learn your face. Nothing was stored."
FORGET_CONFIRM = (
    "This deletes everything I keep about you: your face samples in every chat, your settings, your "
    "mood journal, your song ratings and your Spotify link. Are you sure?"
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

UNKNOWN_COMMAND = "I don't know {command}. Send /help to see what I can do."
UNKNOWN_BUTTON = "I don't know that button any more."
QUESTION_EXPIRED = "That question has expired; send /{command} again."
TRACKS_NOW = "I send {count} songs per photo. Change it with /tracks N (N from {low} to {high})."
TRACKS_SET = "Done: I'll send {count} songs per photo."
INTEGER_RANGE = "/{command} takes a whole number from {low} to {high}, e.g. /{command} {example}."
RATE_LIMITED = "You're sending photos faster than I can listen: try again in {seconds} s."
BUSY = "I'm busy with a lot of photos right now; please try again in a minute."
TOO_BIG = "That file is {size:.1f} MB; I can take photos up to {limit} MB."
TOO_BIG_UNKNOWN = "That file is too big; I can take photos up to {limit} MB."
DOWNLOAD_FAILED = "I couldn't download that photo; please send it again."
NOT_A_PHOTO = "That file isn't a photo ({kind}); send a JPEG, PNG or WebP image."
ONLY_PHOTOS = "I can only read photos: send me a selfie (or /help)."
SEND_A_PHOTO = "Send me a photo (or /help to see what I can do)."
MENTION_HINT = "Mention me with a photo attached (or use /mood) and I'll pick songs for the mood."
RESTARTING = "I'm restarting; please try again in a minute."
SORRY = "Sorry, something went wrong on my side. Please try again in a moment."
ENROLL_RETRY = "{reason} Send another selfie, or any command to stop."
ENROLLED = "Got it: I'll recognise you in this chat ({samples} sample(s) of your face)."
ENROLL_MORE = " A couple more selfies (/enroll again) make me surer."
FORGOTTEN = (
    "Done. I deleted everything about you: {embeddings} face sample(s), your settings{journal}{ratings}"
    "{spotify}. I won't recognise you any more."
)
FORGOTTEN_JOURNAL = ", {count} mood journal entry(ies)"
FORGOTTEN_RATINGS = ", {count} song rating(s)"
FORGOTTEN_SPOTIFY = " and your Spotify link"
NOT_FOR_ANONYMOUS = (
    "I can't tell who you are when you post anonymously (as the group or a channel), so I can't "
    "{what} for you. Send it from your own account."
)
OPEN_PRIVATE_CHAT = (
    "That answer is for your eyes only, and I can't message you privately yet: open a chat with "
    "{bot}, press Start, then send the command there."
)

SPOTIFY_CONFIRM = (
    "Link the Spotify account {name} (Spotify user id {spotify_id}) to you? Say yes only if it is "
    "your own account: whoever opens your link can sign in with theirs. This question expires in "
    "{minutes} minutes."
)
SPOTIFY_CONFIRM_YES = "Yes, link it"
SPOTIFY_CONFIRM_NO = "No"
SPOTIFY_LINKED = "Spotify linked as {name}. Press 'Make a Spotify playlist' under a photo reply."
SPOTIFY_DECLINED = (
    "OK, I didn't link that Spotify account and deleted its authorisation. If it wasn't you who "
    "opened the link, ask for a new one with /linkspotify and keep it to yourself."
)

# Mood journal (/journal, /history) ---------------------------------------------------------------

JOURNAL_CONSENT = (
    "Your mood journal: while it is on, I keep, for each photo you send me, the time, the emotion the "
    "songs followed and the mood of the songs I sent (never the photo), for 30 days. /history shows "
    "them as a chart; /journal off or /forget deletes them. Turn it on?"
)
JOURNAL_CONSENT_YES = "Yes, keep my journal"
JOURNAL_CONSENT_NO = "No"
JOURNAL_ON = "Your mood journal is on. Send photos as usual; /history shows how your moods went."
JOURNAL_DECLINED = "OK, no journal: I keep nothing of the kind."
JOURNAL_STATUS_ON = (
    "Your mood journal is on: {count} photo(s) in the last 30 days. /history shows them; "
    "/journal off stops it and deletes them."
)
JOURNAL_STATUS_OFF = "Your mood journal is off. /journal on starts one (I ask first)."
JOURNAL_OFF = "Your mood journal is off, and I deleted its {count} entry(ies)."
JOURNAL_ANSWERED = "That question was answered already: your mood journal is {state}."
JOURNAL_STATE_ON = "on"
JOURNAL_STATE_OFF = "off"
HISTORY_OFF = "Your mood journal is off, so I have no history to show. /journal on starts one."
HISTORY_EMPTY = (
    "Your mood journal has no photos from the last 30 days yet: send me a selfie, then try /history again."
)
HISTORY_CAPTION = (
    "{summary}\n\nYour last 30 days ({count} photo(s)): the share of each emotion per day, and the mood "
    "of the songs I sent."
)
HISTORY_SENT_PRIVATELY = "Your mood history is personal: I've sent it to you in a private message."

SUMMARY_COMPARED = "Mostly {emotion} this week, {change} than last week."
SUMMARY_SAME = "Mostly {emotion} this week, about the same as last week."
SUMMARY_FIRST_WEEK = "Mostly {emotion} this week."
SUMMARY_QUIET_WEEK = "No photos this week; mostly {emotion} over the last 30 days."
SUMMARY_NOTHING = "No photos in the last 30 days."
CHANGE_CALMER = "calmer"
CHANGE_LIVELIER = "livelier"
CHANGE_HAPPIER = "happier"
CHANGE_GLOOMIER = "gloomier"
CHANGE_BOTH = "{first} and {second}"
EMOTION_WORDS = {
    "angry": "angry",
    "disgust": "disgusted",
    "fear": "fearful",
    "happy": "happy",
    "neutral": "neutral",
    "sad": "sad",
    "surprise": "surprised",
}
"""How a summary names each emotion ("mostly fearful", not "mostly fear")."""

CHART_TITLE = "Your mood, last 30 days"
CHART_EMOTIONS = "Share of photos"
CHART_SONGS = "Songs I sent"
CHART_VALENCE = "brightness (valence)"
CHART_ENERGY = "energy"
CHART_DAYS = "day (UTC)"

# Song feedback ("not this one", "more like this") ---------------------------------------------------

RATE_BUTTON = "Rate these songs"
RATE_PROMPT = (
    "Songs {first}-{last} of {total}: pick one you never want again, or one you'd like more of. "
    "I remember it for you only; /forget deletes it."
)
RATE_NOPE = "Not this one..."
RATE_LIKE = "More like this..."
RATE_NOPE_SYMBOL = "👎"
RATE_LIKE_SYMBOL = "👍"
RATE_NEXT = "Next songs"
RATE_GONE = "I no longer have that list (the reply moved on); use the buttons under the newest list."
NOPE_DONE = "Got it: I won't send you \u201c{song}\u201d by {artists} again."
LIKE_DONE = "Noted: more like \u201c{song}\u201d. I'll put {artists} first when they fit the mood."
UNKNOWN_TRACK = "I can't find that song in my catalog any more."
RATE_NOTHING = "You have no songs to rate here yet: send me a photo first."
RATE_NUMBER = "Your last list has {count} song(s): pick a number from 1 to {count}, e.g. /{command} 1."
RATE_HINT = "(rate a song of this list: /like N for more like it, /dislike N for never again)"
