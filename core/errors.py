"""Typed, user-facing errors. ``str(error)`` is a friendly sentence; ``code`` is stable for JSON.

An error is raised with an English template marked for translation and its named values::

    raise FileTooLarge(N_("That file is {size:.1f} MB; I can take up to {limit} MB."), size=s, limit=20)

``str(error)`` is the English sentence (logs, the CLI); :meth:`MoodtunesError.localized` is the sentence
in the language of the user being answered (:mod:`core.app.i18n`), the details kept. A message that
has no translation (raised without a template) falls back to the class's :attr:`~MoodtunesError.default`
sentence in that language, so a user never reads a language they did not ask for.
"""

from __future__ import annotations

from core.app.i18n import DEFAULT, N_, Message, current_language


class MoodtunesError(Exception):
    """Base class: something the user can act on, with a one-line message.

    Args:
        message: the English template (marked with ``N_``), or a :class:`~core.app.i18n.Message`;
            default :attr:`default`.
        params: the template's named values (numbers, names, or messages themselves).
    """

    code = "error"
    default = N_("Something went wrong; please try again.")
    """The class's sentence, used where a message has no translation."""

    def __init__(self, message: str | Message | None = None, /, **params: object) -> None:
        if isinstance(message, Message):
            self.message = message
        else:
            self.message = Message(message or self.default, **params)
        super().__init__(str(self.message))

    def localized(self) -> str:
        """The sentence in the current language (see the module docstring)."""
        if current_language() == DEFAULT:
            return str(self)
        text = self.message.render()
        return text if text is not None else Message(self.default).translated()


class BadImage(MoodtunesError):
    """The bytes cannot be used as a photo."""

    code = "bad_image"
    default = N_("I can't use that file as a photo; please send a JPEG, PNG or WebP photo.")


class NotAnImage(BadImage):
    code = "not_an_image"
    default = N_("That file is not a photo I can read (JPEG, PNG, WebP or GIF).")


class UnsupportedFormat(NotAnImage):
    """An image, but of a format (TIFF, BMP, EPS, lossless JPEG, ...) that is never decoded."""

    code = "unsupported_format"
    default = N_("That file is in a format I can't read; I can read JPEG, PNG, WebP and GIF photos.")


class TruncatedImage(BadImage):
    code = "truncated_image"
    default = N_("That photo is cut off or damaged; please send it again.")


class FileTooLarge(BadImage):
    code = "file_too_large"
    default = N_("That file is too big for me; please send a smaller photo.")


class TooManyPixels(BadImage):
    code = "too_many_pixels"
    default = N_("That image has too many pixels for me; please send a smaller photo.")


class ImageTooSmall(BadImage):
    code = "image_too_small"
    default = N_("That image is too small to find faces in; please send a bigger photo.")


class BadAspectRatio(BadImage):
    """Too long and thin for faces (a strip, not a photo)."""

    code = "bad_aspect_ratio"
    default = N_("That image is too long and thin to look for faces in; please send an ordinary photo.")


class TooComplex(BadImage):
    """Built so that decoding would be slow: too many JPEG scans, PNG chunks or header segments."""

    code = "too_complex"
    default = N_(
        "That image is built in an unusual way, so I won't decode it; please save it again as an "
        "ordinary JPEG or PNG."
    )


class FaceError(MoodtunesError):
    """The photo is fine but its faces do not allow what was asked."""

    code = "face_error"
    default = N_("I can't use the faces in that photo for this; please try another photo.")


class NoFace(FaceError):
    code = "no_face"
    default = N_("I could not find a face in that photo. Try a well-lit selfie, face to the camera.")


class AmbiguousFace(FaceError):
    """Enrolment needs one dominant face; two or more of similar size were found."""

    code = "ambiguous_face"
    default = N_(
        "I see several faces of similar size. To enrol, send a selfie with only you in front (people "
        "far behind you are fine)."
    )


class FaceTooSmall(FaceError):
    code = "face_too_small"
    default = N_("Your face is too small in that photo; move closer to the camera.")


class FaceBelongsToOther(FaceError):
    """Enrolment refused: the face is too close to another enrolled user's."""

    code = "face_belongs_to_other"
    default = N_(
        "That face is already enrolled here as someone else, so I can't enrol it for you. If it "
        "really is you, ask them to /forget first."
    )


class NotFound(MoodtunesError):
    code = "not_found"
    default = N_("I can't find that.")


class Busy(MoodtunesError):
    """Too much work queued: the request is refused at once rather than left waiting."""

    code = "busy"
    default = N_("I'm busy with a lot of photos right now; please try again in a minute.")


class DownloadFailed(MoodtunesError):
    """The platform would not give us the file."""

    code = "download_failed"
    default = N_("I couldn't download that photo; please send it again.")


class UserGone(MoodtunesError):
    """The user was deleted (``/forget``) while work for them was in flight; nothing was stored."""

    code = "user_gone"
    default = N_("Your data was deleted meanwhile, so nothing was stored.")
