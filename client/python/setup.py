"""Build glue: puts the repository's schema files into the package.

The Lua scripts (schema/redis/*.lua) and the envelope schema
(schema/job.v1.schema.json) exist once, at the top of the repository; libjobd
embeds them at build time (schema/embed.cmake) and so does this package: the
build copies them into jobd/schema/ of the wheel (build_py), and an sdist
carries them in the same place (sdist), so a wheel built from the sdist finds
them there. Nothing is copied into the source tree: run in place (tests),
jobd/schema.py reads them from ../../schema.

All metadata lives in pyproject.toml.
"""
import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_SCHEMA = os.path.normpath(os.path.join(HERE, "..", "..", "schema"))
PKG_SCHEMA = os.path.join(HERE, "jobd", "schema")  # only in an unpacked sdist


def schema_files(root):
    """(source path, path inside jobd/schema) of every file the package needs."""
    out = [(os.path.join(root, "job.v1.schema.json"), "job.v1.schema.json")]
    lua_dir = os.path.join(root, "redis")
    for name in sorted(os.listdir(lua_dir)):
        if name.endswith(".lua"):
            out.append((os.path.join(lua_dir, name), os.path.join("redis", name)))
    return out


def schema_root():
    for root in (REPO_SCHEMA, PKG_SCHEMA):
        if os.path.isfile(os.path.join(root, "job.v1.schema.json")):
            return root
    raise SystemExit("jobd: cannot find schema/ (build from the jobd repository or its sdist)")


def copy_schema(dest_pkg_dir):
    root = schema_root()
    for src, rel in schema_files(root):
        dst = os.path.join(dest_pkg_dir, "schema", rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copyfile(src, dst)


class BuildPy(build_py):
    def run(self):
        super().run()
        if not self.dry_run:
            copy_schema(os.path.join(self.build_lib, "jobd"))


class Sdist(sdist):
    def make_release_tree(self, base_dir, files):
        super().make_release_tree(base_dir, files)
        copy_schema(os.path.join(base_dir, "jobd"))


setup(cmdclass={"build_py": BuildPy, "sdist": Sdist})
