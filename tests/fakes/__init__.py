"""Loopback fakes of the outside services (Telegram, Discord, Spotify) for end-to-end tests.

Each fake is a small aiohttp server bound to 127.0.0.1 on a free port; the real client libraries are
pointed at it, so no traffic leaves the machine and no real token is ever used.
"""
