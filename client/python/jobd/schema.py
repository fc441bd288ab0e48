"""The repository's schema files, as this package sees them.

The Lua scripts under ``schema/redis/`` and ``schema/job.v1.schema.json``
are the one source of truth shared with libjobd and jobd. An installed
package carries copies made at build time (``setup.py`` puts them in
``jobd/schema/``); run from the source tree (the test suite does), they are
read from ``../../schema`` instead. Nothing here is a hand-made copy.

Like ``schema/embed.cmake``, every script is stored with ``lib.lua``
prepended, byte for byte, so a script has the same text and therefore the
same SHA1 as the one libjobd loads: Redis's script cache holds one copy.
"""
from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from typing import Any, Dict, NamedTuple

__all__ = ["Script", "schema_dir", "script", "envelope_schema"]

_HERE = os.path.dirname(os.path.abspath(__file__))


class Script(NamedTuple):
    """One Lua script with lib.lua prepended, and its SHA1 (hex)."""

    name: str
    text: bytes
    sha: str


def _candidates() -> list:
    return [
        os.path.join(_HERE, "schema"),  # installed: copied in by setup.py
        os.path.normpath(os.path.join(_HERE, "..", "..", "..", "schema")),  # source tree
    ]


@lru_cache(maxsize=None)
def schema_dir() -> str:
    """The directory holding job.v1.schema.json and redis/*.lua."""
    for d in _candidates():
        if os.path.isfile(os.path.join(d, "job.v1.schema.json")) and os.path.isfile(
            os.path.join(d, "redis", "lib.lua")
        ):
            return d
    raise RuntimeError(
        "jobd: schema files not found (looked in %s); install the package with pip "
        "or run it from the jobd source tree" % ", ".join(_candidates())
    )


def _read(rel: str) -> bytes:
    with open(os.path.join(schema_dir(), rel), "rb") as f:
        return f.read()


@lru_cache(maxsize=None)
def script(name: str) -> Script:
    """The script schema/redis/NAME.lua with lib.lua prepended."""
    if name == "lib" or not name.replace("_", "").isalnum():
        raise ValueError("no such script: %r" % name)
    text = _read("redis/lib.lua") + _read("redis/%s.lua" % name)
    return Script(name, text, hashlib.sha1(text).hexdigest())


@lru_cache(maxsize=None)
def envelope_schema() -> Dict[str, Any]:
    """schema/job.v1.schema.json, parsed."""
    return json.loads(_read("job.v1.schema.json"))
