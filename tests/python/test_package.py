"""`pip install ./client/python` into a fresh virtualenv, offline: the
package carries the repository's scripts and schema, copied at build time."""
import os
import shutil
import subprocess
import sys

from conftest import ROOT


def test_pip_install_in_a_fresh_venv_offline(tmp_path, redis_url, prefix):
    # Build from a copy holding only client/python and schema/, so the
    # build writes nothing into the source tree and needs nothing else.
    src = tmp_path / "src"
    shutil.copytree(os.path.join(ROOT, "client", "python"), src / "client" / "python",
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    shutil.copytree(os.path.join(ROOT, "schema"), src / "schema")
    venv = tmp_path / "venv"
    # Debian's python3-redis, -setuptools and -wheel come in through the
    # system site; no index is consulted (offline).
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
                   check=True)
    env = dict(os.environ, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.pop("PYTHONPATH", None)
    p = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-build-isolation",
                        str(src / "client" / "python")], env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    shutil.rmtree(src)  # the installed package must not need the tree
    code = r"""
import hashlib, os, sys
import jobd
from jobd.schema import schema_dir, script
root = sys.argv[1]
assert jobd.__file__.startswith(sys.prefix), jobd.__file__
assert schema_dir().startswith(sys.prefix), schema_dir()
for name in ("enqueue", "watch", "claim", "batch"):
    want = open(root + "/schema/redis/lib.lua", "rb").read() + \
        open(root + "/schema/redis/%s.lua" % name, "rb").read()
    assert script(name).text == want, name
c = jobd.Client(sys.argv[2], prefix=sys.argv[3])
i = c.submit("q", "noop", {"installed": True})
assert c.status(i).payload == {"installed": True}
print("ok")
"""
    p = subprocess.run([str(venv / "bin" / "python"), "-c", code, ROOT, redis_url, prefix],
                       env=env, capture_output=True, text=True, cwd=str(tmp_path))
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stdout + p.stderr
