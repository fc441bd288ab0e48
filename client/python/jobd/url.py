"""Redis URLs, read exactly as libjobd reads them (client/libjobd/redis_url.c).

    redis://[USER[:PASSWORD]@]HOST[:PORT][/DB]
    unix://[USER[:PASSWORD]@]/path.sock[?db=N]
    redis+cluster://[USER[:PASSWORD]@]HOST:PORT[,HOST:PORT...]
        a Redis Cluster, reached through any of the nodes listed (seeds)
    redis+sentinel://[USER[:PASSWORD]@]HOST[:PORT][,HOST[:PORT]...]/MASTER[/DB]
        the primary the Sentinels listed (port 26379 by default) name MASTER;
        the credentials are the primary's (Sentinels are asked without AUTH)

USER is a Redis ACL user (none: the default user); ``%XX`` escapes in the
user and password are decoded. A password file (``password_file=``, else
``$JOBD_REDIS_PASSWORD_FILE``) supplies the password of the URL's user, its
first line, when the URL has none. ``rediss://`` (TLS) is refused, as by
jobd and libjobd built on hiredis 0.14.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from .errors import ConfigError

__all__ = ["RedisURL", "parse_url", "DEFAULT_URL", "SINGLE", "CLUSTER", "SENTINEL"]

DEFAULT_URL = "redis://127.0.0.1:6379/0"
_USAGE = (
    "bad Redis URL (want redis://[USER[:PASSWORD]@]HOST[:PORT][/DB], "
    "unix://[USER[:PASSWORD]@]/path.sock[?db=N], "
    "redis+cluster://[USER[:PASSWORD]@]HOST:PORT[,HOST:PORT...] or "
    "redis+sentinel://[USER[:PASSWORD]@]HOST[:PORT][,...]/MASTER[/DB])"
)
MAX_HOSTS = 8  # REDIS_URL_MAX_HOSTS
SINGLE, CLUSTER, SENTINEL = "redis", "redis+cluster", "redis+sentinel"
_PCT = re.compile(r"%([0-9A-Fa-f]{2})")


@dataclass
class RedisURL:
    """A parsed Redis URL. ``password`` never appears in ``repr`` or
    :meth:`describe`."""

    host: str = "127.0.0.1"
    port: int = 6379
    db: int = 0
    path: Optional[str] = None  # set for unix://
    kind: str = SINGLE  # SINGLE, CLUSTER or SENTINEL
    hosts: List[Tuple[str, int]] = field(default_factory=list)  # seeds or Sentinels
    master: str = ""  # Sentinel: the primary's name
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
        hosts = ",".join("%s:%d" % hp for hp in self.hosts or [(self.host, self.port)])
        if self.kind == SENTINEL:
            return "%s://%s%s/%s/%d" % (self.kind, who, hosts, self.master, self.db)
        return "%s://%s%s/%d" % (self.kind, who, hosts, self.db)

    def connection_kwargs(self) -> Dict[str, Any]:
        """Keyword arguments for redis-py's connection classes (for a cluster
        or Sentinel URL: those of the nodes or primary, without the address)."""
        kw: Dict[str, Any] = {} if self.kind == CLUSTER else {"db": self.db}
        if self.is_unix:
            kw["path"] = self.path
        elif self.kind == SINGLE:
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


def _host_port(s: str, default_port: int) -> Tuple[str, int]:
    host, colon, port = s.partition(":")
    return host or "127.0.0.1", _int_in(port, 1, 65535) if colon else default_port


def _parse_tcp(u: RedisURL, kind: str, rest: str) -> None:
    """The TCP forms (redis_url.c parse_tcp): userinfo, hosts, then the path."""
    u.kind = kind
    # The last '@': neither host, port nor path holds one, while an
    # unencoded password might.
    at = rest.rfind("@")
    if at >= 0:
        _userinfo(u, rest[:at])
        rest = rest[at + 1:]
    hosts, slash, path = rest.partition("/")
    parts = hosts.split(",")
    if len(parts) > MAX_HOSTS:
        raise ConfigError("bad Redis URL: more than %d hosts" % MAX_HOSTS)
    if kind == SINGLE and len(parts) > 1:
        raise ConfigError(_USAGE)
    u.hosts = [_host_port(p, 26379 if kind == SENTINEL else 6379) for p in parts]
    u.host, u.port = u.hosts[0]
    if kind == SENTINEL:  # "/MASTER[/DB]"
        u.master, _, path = path.partition("/")
        if not slash or not u.master:
            raise ConfigError(_USAGE)
    if path:
        u.db = _int_in(path, 0, 65535)
    if kind == CLUSTER and u.db != 0:
        raise ConfigError("bad Redis URL: a Redis Cluster has only database 0")


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
    kind = next((k for k in (SINGLE, CLUSTER, SENTINEL) if url.startswith(k + "://")), None)
    if kind is not None:
        _parse_tcp(u, kind, url[len(kind) + 3:])
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
    elif url.startswith("rediss://"):
        raise ConfigError(
            "rediss:// (TLS): jobd is not built with TLS; run a TLS sidecar such as stunnel "
            "and point redis:// at it (deploy/redis/README.md)")
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
