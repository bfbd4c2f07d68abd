"""``moodtunes run --workers N``: what each worker is told, and the set-ups several workers refuse."""

from __future__ import annotations

import pytest

from bot.deploy import nginx_config
from bot.supervisor import check, worker_env
from core.config import ConfigError, Settings


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def test_each_worker_gets_its_port_threads_and_shards() -> None:
    config = settings(
        telegram_token="1:x",
        telegram_webhook_url="https://bot.example.org/telegram/hook",
        telegram_webhook_listen="127.0.0.1:8443",
        ops_listen="127.0.0.1:9100",
        discord_token="d",
        discord_shard_count=4,
    )
    envs = [worker_env(config, i, 3, cores=6) for i in range(3)]
    assert [e["MOODTUNES_TELEGRAM_WEBHOOK_LISTEN"] for e in envs] == [
        f"127.0.0.1:{8443 + i}" for i in range(3)
    ]
    assert [e["MOODTUNES_OPS_LISTEN"] for e in envs] == [f"127.0.0.1:{9100 + i}" for i in range(3)]
    assert [e["MOODTUNES_TORCH_THREADS"] for e in envs] == ["2", "2", "2"]  # the cores shared out
    assert [e["MOODTUNES_DISCORD_SHARD_IDS"] for e in envs] == ["0,3", "1", "2"]
    assert [e["MOODTUNES_WORKER_INDEX"] for e in envs] == ["0", "1", "2"]
    # More workers than shards: the extra ones serve Telegram only.
    one_shard = settings(discord_token="d", discord_shard_count=1)
    assert worker_env(one_shard, 1, 2, cores=2)["MOODTUNES_DISCORD_TOKEN"] == ""
    assert worker_env(one_shard, 0, 2, cores=2)["MOODTUNES_TORCH_THREADS"] == "1"


def test_long_polling_cannot_be_shared() -> None:
    with pytest.raises(ConfigError, match="webhook"):
        check(settings(telegram_token="1:x"), 2)
    check(settings(telegram_token="1:x"), 1)


def test_the_nginx_configuration_lists_every_worker() -> None:
    text = nginx_config(3, 8443, server_name="bot.example.org")
    assert all(f"server 127.0.0.1:{8443 + i};" in text for i in range(3))
    assert "proxy_next_upstream error timeout http_502 http_503 non_idempotent;" in text
    assert "ssl_certificate     /etc/letsencrypt/live/bot.example.org/fullchain.pem;" in text
    assert "listen 127.0.0.1:9000;" in nginx_config(2, listen="127.0.0.1:9000")
