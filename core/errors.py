"""Typed, user-facing errors. ``str(error)`` is a friendly sentence; ``code`` is stable for JSON."""

from __future__ import annotations


class MoodtunesError(Exception):
    """Base class: something the user can act on, with a one-line message."""

    code = "error"


class BadImage(MoodtunesError):
    """The bytes cannot be used as a photo."""

    code = "bad_image"


class NotAnImage(BadImage):
    code = "not_an_image"


class UnsupportedFormat(NotAnImage):
    """An image, but of a format (TIFF, BMP, EPS, lossless JPEG, ...) that is never decoded."""

    code = "unsupported_format"


class TruncatedImage(BadImage):
    code = "truncated_image"


class FileTooLarge(BadImage):
    code = "file_too_large"


class TooManyPixels(BadImage):
    code = "too_many_pixels"


class ImageTooSmall(BadImage):
    code = "image_too_small"


class BadAspectRatio(BadImage):
    """Too long and thin for faces (a strip, not a photo)."""

    code = "bad_aspect_ratio"


class TooComplex(BadImage):
    """Built so that decoding would be slow: too many JPEG scans, PNG chunks or header segments."""

    code = "too_complex"


class FaceError(MoodtunesError):
    """The photo is fine but its faces do not allow what was asked."""

    code = "face_error"


class NoFace(FaceError):
    code = "no_face"


class AmbiguousFace(FaceError):
    """Enrolment needs one dominant face; two or more of similar size were found."""

    code = "ambiguous_face"


class FaceTooSmall(FaceError):
    code = "face_too_small"


class FaceBelongsToOther(FaceError):
    """Enrolment refused: the face is too close to another enrolled user's."""

    code = "face_belongs_to_other"


class NotFound(MoodtunesError):
    code = "not_found"


class Busy(MoodtunesError):
    """Too much work queued: the request is refused at once rather than left waiting."""

    code = "busy"


class DownloadFailed(MoodtunesError):
    """The platform would not give us the file."""

    code = "download_failed"


class UserGone(MoodtunesError):
    """The user was deleted (``/forget``) while work for them was in flight; nothing was stored."""

    code = "user_gone"
