"""What the bot says, in one place: every sentence a user can read, on every platform.

Each constant is English, marked with :func:`~core.app.i18n.N_` so that ``make messages`` extracts it into
the catalogs; it is translated where it is used, with :func:`~core.app.i18n._` (``_(texts.WELCOME)``),
in the language of the user being answered. Sentences with ``{placeholders}`` are translated first and
then filled with ``str.format`` (``_(texts.TRACKS_SET).format(count=15)``): translations keep the same
named placeholders (``tests/test_i18n.py`` checks). The help text is generated from the command table
(:mod:`core.app.commands`), with :data:`HELP_INTRO` and :data:`PRIVACY` around it.
"""

from __future__ import annotations

from core.app.i18n import N_

WELCOME = N_(
    "Hi! I'm moodtunes. Send me a selfie and I'll tell you how you look, and answer with songs "
    "that fit the mood.\n\n"
    "I can also learn to recognise you (/enroll), make Spotify playlists of the songs "
    "(/linkspotify), and forget everything about you (/forget). /help lists everything."
)

HELP_INTRO = N_(
    "Send a photo: I find the faces, name the people enrolled in this chat, read each face's "
    "emotion and pick songs for the mood."
)

PRIVACY = N_(
    "What I keep: never your photos. If you /enroll, a numeric fingerprint of your face (an "
    "embedding), used only in the chat where you enrolled; your /tracks and /language settings and the "
    "language your app reports; the songs you rate "
    '("not this one", "more like this"); if you turn the /journal on, each photo\'s emotion and the '
    "mood of the songs I sent, for 30 days; and, if you link Spotify, an encrypted token to make "
    "playlists and your top artists (read once a day). /forget deletes all of it at once."
)

CONSENT = N_(
    "Before I learn your face: I will keep a numeric fingerprint of it (never the photo), only to "
    "recognise you in this chat. Face recognition only personalises the reply; it never unlocks "
    "anything. You can delete it any time with /forget. Do you agree?"
)

SEND_SELFIE = N_("Great! Now send me a selfie: just you, face to the camera, in good light.")
ENROLL_CANCELLED = N_("OK, I won't learn your face. Nothing was stored.")
FORGET_CONFIRM = N_(
    "This deletes everything I keep about you: your face samples in every chat, your settings, your "
    "mood journal, your song ratings and your Spotify link. Are you sure?"
)
FORGET_CANCELLED = N_("OK, nothing was deleted.")
NO_FACE = N_(
    "I couldn't find a face in that photo. Try one where a face is clearly visible, facing the "
    "camera, in good light."
)
OOPS = N_("Something went wrong on my side while reading that photo; please try again in a moment.")
NO_CATALOG = N_(
    "I have no music catalog configured, so no songs this time (the operator can set "
    "MOODTUNES_CATALOG; see `moodtunes catalog fetch`)."
)
EXPIRED = N_("That result is too old for its buttons; send the photo again.")
NOT_YOURS = N_("Those buttons belong to the person who sent the photo.")

UNKNOWN_COMMAND = N_("I don't know {command}. Send /help to see what I can do.")
UNKNOWN_BUTTON = N_("I don't know that button any more.")
QUESTION_EXPIRED = N_("That question has expired; send /{command} again.")
TRACKS_NOW = N_("I send {count} songs per photo. Change it with /tracks N (N from {low} to {high}).")
TRACKS_SET = N_("Done: I'll send {count} songs per photo.")
INTEGER_RANGE = N_("/{command} takes a whole number from {low} to {high}, e.g. /{command} {example}.")
RATE_LIMITED = N_("You're sending photos faster than I can listen: try again in {seconds} s.")
BUSY = N_("I'm busy with a lot of photos right now; please try again in a minute.")
TOO_BIG = N_("That file is {size:.1f} MB; I can take photos up to {limit} MB.")
TOO_BIG_UNKNOWN = N_("That file is too big; I can take photos up to {limit} MB.")
DOWNLOAD_FAILED = N_("I couldn't download that photo; please send it again.")
NOT_A_PHOTO = N_("That file isn't a photo ({kind}); send a JPEG, PNG or WebP image.")
ONLY_PHOTOS = N_("I can only read photos: send me a selfie (or /help).")
SEND_A_PHOTO = N_("Send me a photo (or /help to see what I can do).")
MENTION_HINT = N_("Mention me with a photo attached (or use /mood) and I'll pick songs for the mood.")
RESTARTING = N_("I'm restarting; please try again in a minute.")
SORRY = N_("Sorry, something went wrong on my side. Please try again in a moment.")
ENROLL_RETRY = N_("{reason} Send another selfie, or any command to stop.")
ENROLLED = N_("Got it: I'll recognise you in this chat ({samples} sample(s) of your face).")
ENROLL_MORE = N_(" A couple more selfies (/enroll again) make me surer.")
FORGOTTEN = N_(
    "Done. I deleted everything about you: {embeddings} face sample(s), your settings{journal}{ratings}"
    "{spotify}. I won't recognise you any more."
)
FORGOTTEN_JOURNAL = N_(", {count} mood journal entry(ies)")
FORGOTTEN_RATINGS = N_(", {count} song rating(s)")
FORGOTTEN_SPOTIFY = N_(" and your Spotify link")
NOT_FOR_ANONYMOUS = N_(
    "I can't tell who you are when you post anonymously (as the group or a channel), so I can't "
    "{what} for you. Send it from your own account."
)
OPEN_PRIVATE_CHAT = N_(
    "That answer is for your eyes only, and I can't message you privately yet: open a chat with "
    "{bot}, press Start, then send the command there."
)

SPOTIFY_CONFIRM = N_(
    "Link the Spotify account {name} (Spotify user id {spotify_id}) to you? Say yes only if it is "
    "your own account: whoever opens your link can sign in with theirs. This question expires in "
    "{minutes} minutes."
)
SPOTIFY_CONFIRM_YES = N_("Yes, link it")
SPOTIFY_CONFIRM_NO = N_("No")
SPOTIFY_LINKED = N_("Spotify linked as {name}. Press 'Make a Spotify playlist' under a photo reply.")
SPOTIFY_DECLINED = N_(
    "OK, I didn't link that Spotify account and deleted its authorisation. If it wasn't you who "
    "opened the link, ask for a new one with /linkspotify and keep it to yourself."
)

# Mood journal (/journal, /history) ---------------------------------------------------------------

JOURNAL_CONSENT = N_(
    "Your mood journal: while it is on, I keep, for each photo you send me, the time, the emotion the "
    "songs followed and the mood of the songs I sent (never the photo), for 30 days. /history shows "
    "them as a chart; /journal off or /forget deletes them. Turn it on?"
)
JOURNAL_CONSENT_YES = N_("Yes, keep my journal")
JOURNAL_CONSENT_NO = N_("No")
JOURNAL_ON = N_("Your mood journal is on. Send photos as usual; /history shows how your moods went.")
JOURNAL_DECLINED = N_("OK, no journal: I keep nothing of the kind.")
JOURNAL_STATUS_ON = N_(
    "Your mood journal is on: {count} photo(s) in the last 30 days. /history shows them; "
    "/journal off stops it and deletes them."
)
JOURNAL_STATUS_OFF = N_("Your mood journal is off. /journal on starts one (I ask first).")
JOURNAL_OFF = N_("Your mood journal is off, and I deleted its {count} entry(ies).")
JOURNAL_ANSWERED = N_("That question was answered already: your mood journal is {state}.")
JOURNAL_STATE_ON = N_("on")
JOURNAL_STATE_OFF = N_("off")
HISTORY_OFF = N_("Your mood journal is off, so I have no history to show. /journal on starts one.")
HISTORY_EMPTY = N_(
    "Your mood journal has no photos from the last 30 days yet: send me a selfie, then try /history again."
)
HISTORY_CAPTION = N_(
    "{summary}\n\nYour last 30 days ({count} photo(s)): the share of each emotion per day, and the mood "
    "of the songs I sent."
)
HISTORY_SENT_PRIVATELY = N_("Your mood history is personal: I've sent it to you in a private message.")

SUMMARY_COMPARED = N_("Mostly {emotion} this week, {change} than last week.")
SUMMARY_SAME = N_("Mostly {emotion} this week, about the same as last week.")
SUMMARY_FIRST_WEEK = N_("Mostly {emotion} this week.")
SUMMARY_QUIET_WEEK = N_("No photos this week; mostly {emotion} over the last 30 days.")
SUMMARY_NOTHING = N_("No photos in the last 30 days.")
CHANGE_CALMER = N_("calmer")
CHANGE_LIVELIER = N_("livelier")
CHANGE_HAPPIER = N_("happier")
CHANGE_GLOOMIER = N_("gloomier")
CHANGE_BOTH = N_("{first} and {second}")
EMOTION_WORDS = {
    "angry": N_("angry"),
    "disgust": N_("disgusted"),
    "fear": N_("fearful"),
    "happy": N_("happy"),
    "neutral": N_("neutral"),
    "sad": N_("sad"),
    "surprise": N_("surprised"),
}
"""How a summary names each emotion ("mostly fearful", not "mostly fear")."""

CHART_TITLE = N_("Your mood, last 30 days")
CHART_EMOTIONS = N_("Share of photos")
CHART_SONGS = N_("Songs I sent")
CHART_VALENCE = N_("brightness (valence)")
CHART_ENERGY = N_("energy")
CHART_DAYS = N_("day (UTC)")

# Song feedback ("not this one", "more like this") ---------------------------------------------------

RATE_BUTTON = N_("Rate these songs")
RATE_PROMPT = N_(
    "Songs {first}-{last} of {total}: pick one you never want again, or one you'd like more of. "
    "I remember it for you only; /forget deletes it."
)
RATE_NOPE = N_("Not this one...")
RATE_LIKE = N_("More like this...")
RATE_NOPE_SYMBOL = "👎"
RATE_LIKE_SYMBOL = "👍"
RATE_NEXT = N_("Next songs")
RATE_GONE = N_("I no longer have that list (the reply moved on); use the buttons under the newest list.")
NOPE_DONE = N_("Got it: I won't send you \u201c{song}\u201d by {artists} again.")
LIKE_DONE = N_("Noted: more like \u201c{song}\u201d. I'll put {artists} first when they fit the mood.")
UNKNOWN_TRACK = N_("I can't find that song in my catalog any more.")
RATE_NOTHING = N_("You have no songs to rate here yet: send me a photo first.")
RATE_NUMBER = N_("Your last list has {count} song(s): pick a number from 1 to {count}, e.g. /{command} 1.")
RATE_HINT = N_("(rate a song of this list: /like N for more like it, /dislike N for never again)")

# Photo replies -------------------------------------------------------------------------------------

HELLO = N_("Hi {name}!")
YOU_LOOK = N_("You look {emotion} ({confidence:.0%}).")
STRANGER = N_("I don't know you yet (send /enroll so I can).")
GROUP_HEADLINE = N_("I see {count} faces, {group}; the songs follow the group.")
GROUP_ONE = N_("{emotion}: 1 face")
GROUP_ALL = N_("all {emotion}: {agreeing} of {faces} faces")
GROUP_MOSTLY = N_("mostly {emotion}: {agreeing} of {faces} faces")
GROUP_MIXED = N_("mixed, leaning {emotion}: {agreeing} of {faces} faces")
CROWD = N_("I looked at the {count} largest of {total} faces.")
CROWD_AT_LEAST = N_("I looked at the {count} largest of at least {total} faces.")
FACE_UNKNOWN = N_("Someone I don't know yet")
FACE_LOOKS = N_("{name} looks {emotion} ({confidence:.0%})")
FACE_LABEL_UNKNOWN = N_("unknown")
"""A face nobody enrolled, on the annotated photo."""
SONGS_FOR_MOOD = N_("Songs for the mood")
SONGS = N_("Songs")
SONGS_COUNT_FOR_MOOD = N_("{count} songs for the mood")
MORE_SONGS = N_("More songs for the same mood:")
LIFTING = N_("Lifting the mood:")
MATCHING = N_("Matching the mood:")
RUN_OUT = N_("I've run out of new songs for this mood.")
BUTTON_MATCH = N_("Match my mood")
BUTTON_LIFT = N_("Lift my mood")
BUTTON_MORE = N_("More tracks")
BUTTON_PLAYLIST = N_("Make a Spotify playlist")
PLAYLIST_LINK_FIRST = N_("Link your Spotify account first with /linkspotify, then press the button again.")
PLAYLIST_EMPTY = N_("This list has no songs left to make a playlist of; send another photo.")
PLAYLIST_BUSY = N_("Your playlist is still being made; press the button again in a moment.")
PLAYLIST_READY = N_("Your playlist of {count} songs is ready: {url}")
MOOD_ATTACH = N_("Attach a photo to /mood.")

EMOTION_NAMES = {
    "angry": N_("angry"),
    "disgust": N_("disgust"),
    "fear": N_("fear"),
    "happy": N_("happy"),
    "neutral": N_("neutral"),
    "sad": N_("sad"),
    "surprise": N_("surprise"),
}
"""How a photo reply names the emotion of a face (the model's own labels, in English)."""

MOOD_LINE = N_("{mood}: {words}")
MOOD_LIFTING = N_("{start}; lifting towards {goal}")
MOOD_NAMES = {
    "happy": N_("happy"),
    "energetic": N_("energetic"),
    "calm": N_("calm"),
    "sad": N_("sad"),
    "intense": N_("intense"),
    "dark": N_("dark"),
}
"""The music moods (:data:`core.music.moods.MOODS`), as the mood line under a photo reply names them."""
FEATURE_WORDS = (
    N_("melancholic"),
    N_("cheerful"),
    N_("low energy"),
    N_("high energy"),
    N_("loose rhythm"),
    N_("danceable"),
    N_("electric"),
    N_("acoustic"),
    N_("sung"),
    N_("instrumental"),
    N_("quiet"),
    N_("loud"),
    N_("slow"),
    N_("fast"),
)
"""The words of :data:`core.music.moods.FEATURE_WORDS` (how the mood line describes songs), marked for
the catalogs; ``tests/test_i18n.py`` checks that every one is here."""

# Conversations, linking ------------------------------------------------------------------------------

ENROLL_YES = N_("Yes, enrol me")
FORGET_YES = N_("Yes, delete everything")
NO = N_("No")
WHAT_ENROLL = N_("learn your face")
WHAT_LINK = N_("link Spotify")
WHAT_JOURNAL = N_("keep a mood journal")
LINK_TEXT = N_(
    "Open this link to connect your Spotify account (it works once, for 10 minutes). If the page "
    "you land on doesn't load, copy its address and paste it here."
)
LINK_SENT_PRIVATELY = N_("I've sent you the Spotify link in a private message.")
SPOTIFY_OFF = N_("Spotify is not configured.")
SPOTIFY_UNKNOWN_ID = N_("unknown")
NOT_LINKED = N_("Your Spotify account wasn't linked.")
UNLINKED = N_(
    "Unlinked: I deleted your Spotify tokens. To revoke moodtunes' access on Spotify's side too, "
    "visit https://www.spotify.com/account/apps/."
)

# Commands ----------------------------------------------------------------------------------------------

USAGE = N_("Usage: {usage}")
HELP_NOW = N_("{description}, now {count}")

# Languages (/language) -----------------------------------------------------------------------------------

LANGUAGE_NAMES = {"en": N_("English"), "es": N_("Spanish")}
"""Each shipped language, named in the language of the sentence (``"inglés"`` in Spanish)."""
LANGUAGE_CHOSEN = N_("I talk to you in {language}, as you chose with /language.")
LANGUAGE_PLATFORM = N_("I talk to you in {language}, the language your app uses.")
LANGUAGE_DEFAULT = N_("I talk to you in {language}: your app tells me no language I speak.")
LANGUAGE_CHOICES = N_("Choose one: {choices}, or /language auto to follow your app's language again.")
LANGUAGE_SET = N_("Done: from now on I'll talk to you in {language}.")
LANGUAGE_AUTO = N_("Done: I'll follow your app's language again ({language} for now).")

# Adapters ------------------------------------------------------------------------------------------------

SEND_FAILED = N_("Discord didn't accept my reply; please try again in a moment.")
DM_HINT = N_("Send me a selfie (attach a photo), or use /help to see what I can do.")
FACE = N_("Face")
FACES = N_("Faces")
MOOD = N_("Mood")
FACES_MARKED = N_("Faces marked")
OPEN_LINK = N_("Open link")
NO_PHOTO_IN_MESSAGE = N_("That message has no photo.")
TELEGRAM_REFUSED_FILE = N_("Telegram wouldn't give me that file; please send it again.")
NETWORK_TROUBLE = N_("I couldn't download that photo (network trouble); please send it again.")
PICK_BUTTON = N_("Pick a button from 1 to {count}.")
NO_FILE = N_("No file at {path}. Type a photo's path, a /command, or /help.")
SAVED_CHART = N_("(chart: {path})")
SAVED_PHOTO = N_("(annotated photo: {path})")
BYE = N_("bye (annotated photos are in {path})")
