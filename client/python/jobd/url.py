"""Redis URLs, read exactly as libjobd reads them (client/libjobd/redis_url.c).

    redis://[USER[:PASSWORD]@]HOST[:PORT][/DB]
    unix://[USER[:PASSWORD]@]/path.sock[?db=N]

USER is a Redis ACL user (none: the default user); ``%XX`` escapes in the
user and password are decoded. A password file (``password_file=``, else
``$JOBD_REDIS_PASSWORD_FILE``) supplies the password of the URL's user, its
first line, when the URL has none. Sentinel and Cluster URLs are refused
until jobd and libjobd speak them.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from .errors import ConfigError

__all__ = ["RedisURL", "parse_url", "DEFAULT_URL"]

DEFAULT_URL = "redis://127.0.0.1:6379/0"
_USAGE = (
    "bad Redis URL (want redis://[USER[:PASSWORD]@]HOST[:PORT][/DB] or "
    "unix://[USER[:PASSWORD]@]/path.sock[?db=N])"
)
_PCT = re.compile(r"%([0-9A-Fa-f]{2})")


@dataclass
class RedisURL:
    """A parsed Redis URL. ``password`` never appears in ``repr`` or
    :meth:`describe`."""

    host: str = "127.0.0.1"
    port: int = 6379
    db: int = 0
    path: Optional[str] = None  # set for unix://
    user: str = ""
    password: str = field(default="", repr=False)

    @property
    def is_unix(self) -> bool:
        return self.path is not None

    def describe(self) -> str:
        """The URL with the password masked, for messages (as libjobd)."""
        who = ""
        if self.user:
            who = self.user + (":***" if self.password else "") + "@"
        elif self.password:
            who = "***@"
        if self.is_unix:
            return "unix://%s%s?db=%d" % (who, self.path, self.db)
        return "redis://%s%s:%d/%d" % (who, self.host, self.port, self.db)

    def connection_kwargs(self) -> Dict[str, Any]:
        """Keyword arguments for redis-py's connection classes."""
        kw: Dict[str, Any] = {"db": self.db}
        if self.is_unix:
            kw["path"] = self.path
        else:
            kw["host"] = self.host
            kw["port"] = self.port
        # An ACL user authenticates with its password (empty for a nopass
        # user); the default user with the password alone.
        if self.user:
            kw["username"] = self.user
            kw["password"] = self.password
        elif self.password:
            kw["password"] = self.password
        return kw


def _decode(s: str) -> str:
    # Bytes, then UTF-8: "%C3%A9" is one character, as the C side sees it.
    if "%" not in s:
        return s
    out = bytearray()
    i = 0
    while i < len(s):
        m = _PCT.match(s, i)
        if m:
            out.append(int(m.group(1), 16))
            i = m.end()
        else:
            out += s[i].encode("utf-8")
            i += 1
    return out.decode("utf-8", errors="surrogateescape")


def _userinfo(u: RedisURL, info: str) -> None:
    user, colon, password = info.partition(":")
    u.user = _decode(user)
    if colon:
        u.password = _decode(password)


def _int_in(s: str, lo: int, hi: int) -> int:
    if not s.isdigit() or not s.isascii():
        raise ConfigError(_USAGE)
    v = int(s)
    if v < lo or v > hi:
        raise ConfigError(_USAGE)
    return v


def parse_url(
    url: Optional[str] = None, password_file: Optional[str] = None, *, env: bool = True
) -> RedisURL:
    """Parses a Redis URL (None or "": the default, redis://127.0.0.1:6379/0)
    and reads the password file when the URL has no password: the one given,
    else ``$JOBD_REDIS_PASSWORD_FILE`` when ``env`` is true. Raises
    :class:`ConfigError`."""
    if not url:
        url = DEFAULT_URL
    u = RedisURL()
    if url.startswith("redis://"):
        rest = url[len("redis://"):]
        # The last '@': neither host, port nor db holds one, while an
        # unencoded password might.
        at = rest.rfind("@")
        if at >= 0:
            _userinfo(u, rest[:at])
            rest = rest[at + 1:]
        m = re.match(r"[^:/]*", rest)
        host = m.group(0) if m else ""
        u.host = host or "127.0.0.1"
        rest = rest[len(host):]
        if rest.startswith(":"):
            m = re.match(r":(\d+)", rest)
            if not m:
                raise ConfigError(_USAGE)
            u.port = _int_in(m.group(1), 1, 65535)
            rest = rest[m.end():]
        if rest.startswith("/"):
            if rest[1:]:
                u.db = _int_in(rest[1:], 0, 65535)
        elif rest:
            raise ConfigError(_USAGE)
    elif url.startswith("unix://"):
        rest = url[len("unix://"):]
        # The path starts with '/', so "@/" ends the userinfo.
        if not rest.startswith("/"):
            at = rest.find("@/")
            if at < 0:
                raise ConfigError(_USAGE)
            _userinfo(u, rest[:at])
            rest = rest[at + 1:]
        path, q, query = rest.partition("?")
        if not path.startswith("/"):
            raise ConfigError(_USAGE)
        u.path = path
        if q:
            if not query.startswith("db="):
                raise ConfigError(_USAGE)
            u.db = _int_in(query[3:], 0, 65535)
    elif url.startswith(("redis+sentinel://", "redis+cluster://", "rediss://")):
        raise ConfigError(
            "%s URLs are not supported yet (jobd and libjobd speak redis:// and unix://)"
            % url.split("://", 1)[0]
        )
    else:
        raise ConfigError(_USAGE)
    if password_file is None and env:
        password_file = os.environ.get("JOBD_REDIS_PASSWORD_FILE") or None
    if not u.password and password_file:
        try:
            with open(password_file, "r", encoding="utf-8", errors="surrogateescape") as f:
                line = f.readline()
        except OSError as e:
            raise ConfigError(
                "cannot read Redis password file %s: %s" % (password_file, e.strerror)
            ) from None
        u.password = line.split("\r", 1)[0].split("\n", 1)[0]
    return u
