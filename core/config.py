"""Settings: environment variables prefixed ``MOODTUNES_`` and an optional ``.env`` file.

Every setting lives here, so one place documents what can be configured. CLI flags override the
environment by passing keyword arguments to :func:`load_settings`. Invalid settings raise
:class:`ConfigError` with one readable line, which the entry points print before exiting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.paths import data_file, default_data_dir

APP_NAME = "moodtunes"
FaceWeights = Literal["casia-webface", "vggface2"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class ConfigError(ValueError):
    """A setting is missing or invalid; ``str(error)`` is one line fit for the user."""


def default_db_path() -> Path:
    """SQLite file in the user's data directory (e.g. ``~/.local/share/moodtunes/moodtunes.sqlite3``)."""
    return platformdirs.user_data_path(APP_NAME) / "moodtunes.sqlite3"


def default_cache_dir() -> Path:
    """Cache for converted model weights (e.g. ``~/.cache/moodtunes``)."""
    return platformdirs.user_cache_path(APP_NAME)


def split_host_port(value: str) -> tuple[str, int]:
    """``"0.0.0.0:8443"`` -> ``("0.0.0.0", 8443)``; ValueError for anything else."""
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("must be host:port, e.g. 0.0.0.0:8443")
    return host.strip("[]"), int(port)


class Settings(BaseSettings):
    """All runtime settings. Field ``x`` is read from ``MOODTUNES_X``."""

    model_config = SettingsConfigDict(
        env_prefix="MOODTUNES_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
    )

    # Foundation.
    db: str = Field(
        default_factory=lambda: str(default_db_path()),
        description="SQLite database file, or a postgresql://user:password@host:port/dbname URL.",
    )
    data_dir: Path | None = Field(
        default_factory=default_data_dir,
        description="Shared data (FER2013, faces, catalogs); default ../shared/data beside a checkout.",
    )
    catalog: Path | None = Field(default=None, description="Track catalog (CSV or imported).")
    face_weights: FaceWeights = Field(default="casia-webface", description="FaceNet weights.")
    cache_dir: Path = Field(default_factory=default_cache_dir, description="Model cache.")
    log_level: LogLevel = "INFO"
    torch_threads: int = Field(default=0, ge=0, description="Inference threads; 0 = torch default.")

    # Emotion.
    emotion_weights: Path | None = Field(
        default=None, description="Emotion CNN weights; default: the model shipped in models/."
    )

    # Music.
    tracks_default: int = Field(default=10, ge=1, le=50, description="Tracks per reply.")

    # Spotify (a blank client id disables Spotify features).
    spotify_client_id: str = ""
    spotify_client_secret: SecretStr = SecretStr("")
    spotify_redirect_uri: str = "http://127.0.0.1:8888/spotify/callback"
    spotify_callback_listen: str = Field(
        default="",
        description="host:port of the callback server when the redirect URI is https:// (a proxy).",
    )
    spotify_accounts_url: str = "https://accounts.spotify.com"
    spotify_api_url: str = "https://api.spotify.com/v1/"
    secret_key: SecretStr = Field(
        default=SecretStr(""), description="Fernet key for tokens at rest (moodtunes keygen)."
    )

    # Chat platforms (a blank token leaves that platform off).
    telegram_token: SecretStr = SecretStr("")
    telegram_api_url: str = "https://api.telegram.org/bot"
    telegram_webhook_url: str = Field(default="", description="Public HTTPS URL Telegram posts updates to.")
    telegram_webhook_listen: str = Field(
        default="0.0.0.0:8443", description="host:port the webhook server listens on (behind a proxy)."
    )
    discord_token: SecretStr = SecretStr("")
    discord_api_url: str = ""
    discord_shard_count: int = Field(default=1, ge=1, description="Shards the bot's guilds are split into.")
    discord_shard_ids: str = Field(
        default="",
        description="Comma-separated shard ids this process runs; blank: all (or this worker's share).",
    )

    # Running several workers.
    update_lease_s: float = Field(
        default=30.0,
        gt=0,
        description="A webhook update claimed by a worker that stops renewing is retaken after this.",
    )
    max_updates_in_flight: int = Field(
        default=64, ge=1, description="Webhook updates a worker handles at once."
    )
    ops_listen: str = Field(
        default="", description="host:port for /healthz and /metrics without a webhook server."
    )
    worker_index: int = Field(
        default=0, ge=0, description="This worker's number under `moodtunes run --workers N` (set by it)."
    )

    # Abuse limits.
    rate_limit_photos: int = Field(default=10, ge=1, description="Photos per user per window.")
    rate_limit_window_s: float = Field(default=60.0, gt=0, description="Rate-limit window, seconds.")
    inference_queue: int = Field(
        default=32, ge=1, description="Photos waiting for the models before new ones get 'busy, try again'."
    )
    max_faces: int = Field(
        default=20,
        ge=1,
        le=200,
        description="Faces analysed per photo, the largest first; the reply says how many were left out.",
    )

    # State kept in the store.
    result_ttl_s: float = Field(
        default=7 * 86400.0, gt=0, description="How long reply buttons work, seconds."
    )
    conversation_ttl_s: float = Field(
        default=600.0, gt=0, description="How long /enroll, /forget questions wait."
    )
    db_pool_size: int = Field(default=10, ge=1, description="PostgreSQL connections per worker.")

    @field_validator("db", mode="before")
    @classmethod
    def _db_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, Path) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("spotify_redirect_uri")
    @classmethod
    def _check_redirect(cls, value: str) -> str:
        if value and not (
            value.startswith("https://")
            or value.startswith("http://127.0.0.1")
            or value.startswith("http://[::1]")
        ):
            raise ValueError(
                "Spotify accepts only https:// or a loopback IP (http://127.0.0.1:PORT/...) "
                "redirect URIs, never localhost"
            )
        return value

    @field_validator("discord_shard_ids")
    @classmethod
    def _check_shards(cls, value: str) -> str:
        if value and not all(part.strip().isdigit() for part in value.split(",")):
            raise ValueError("must be comma-separated shard numbers, e.g. 0,2")
        return value

    @field_validator("telegram_webhook_listen", "spotify_callback_listen", "ops_listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        if value:
            split_host_port(value)
        return value

    @model_validator(mode="after")
    def _shards_in_range(self) -> Settings:
        if any(shard >= self.discord_shard_count for shard in self.shard_ids):
            raise ValueError("MOODTUNES_DISCORD_SHARD_IDS must be below MOODTUNES_DISCORD_SHARD_COUNT")
        return self

    @model_validator(mode="after")
    def _callback_listen_for_https(self) -> Settings:
        if self.spotify_redirect_uri.startswith("https://") and not self.spotify_callback_listen:
            raise ValueError(
                "MOODTUNES_SPOTIFY_CALLBACK_LISTEN (host:port your reverse proxy forwards the https "
                "redirect to) is needed with an https:// MOODTUNES_SPOTIFY_REDIRECT_URI"
            )
        return self

    @property
    def db_is_postgres(self) -> bool:
        """True when ``db`` is a PostgreSQL URL rather than a SQLite file."""
        return self.db.startswith(("postgresql://", "postgres://"))

    @property
    def db_path(self) -> Path:
        """The SQLite file (``~`` expanded); ConfigError for a PostgreSQL URL."""
        if self.db_is_postgres:
            raise ConfigError("MOODTUNES_DB is a PostgreSQL URL, not a SQLite file")
        return Path(self.db).expanduser()

    @property
    def default_catalog(self) -> Path | None:
        """``catalog`` if set, else ``spotify/tracks.csv`` of the shared data when present, else None."""
        return self.catalog or data_file(self.data_dir, "spotify", "tracks.csv")

    @property
    def shard_ids(self) -> list[int]:
        """The Discord shards this process runs (all of them when ``discord_shard_ids`` is blank)."""
        if not self.discord_shard_ids:
            return list(range(self.discord_shard_count))
        return sorted({int(part) for part in self.discord_shard_ids.split(",")})

    @property
    def spotify_enabled(self) -> bool:
        """True when Spotify credentials and a token key are configured."""
        return bool(
            self.spotify_client_id
            and self.spotify_client_secret.get_secret_value()
            and self.secret_key.get_secret_value()
        )


def _one_line(error: ValidationError) -> str:
    parts = []
    for err in error.errors():
        message = str(err["msg"]).removeprefix("Value error, ")
        field = "_".join(str(p) for p in err["loc"])
        parts.append(f"MOODTUNES_{field.upper()}: {message}" if field else message)
    return "invalid settings: " + "; ".join(parts)


def load_settings(**overrides: Any) -> Settings:
    """Read the settings; keyword arguments (from CLI flags) win over the environment.

    ``None`` overrides are ignored, so callers can pass optional flags straight through.
    Raises :class:`ConfigError` with one line naming each bad variable.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc)) from None
