"""requirements.lock: the exact versions a fresh install gets, kept in step with pyproject.toml.

    python scripts/lock.py            regenerate the lock with pip-tools' pip-compile (`make lock`)
    python scripts/lock.py --upgrade  the same, moving every package to its newest allowed release
    python scripts/lock.py --check    fail when pyproject.toml changed since the lock was made

pip-compile resolves pyproject.toml's dependencies, the `dev` extra and the build requirements
(setup installs the project without build isolation, so the build backend is locked too).
The lock records a fingerprint of those inputs; `--check` compares it, needs nothing but the
standard library, and so runs before any virtual environment exists (`make setup`, CI).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
LOCK = ROOT / "requirements.lock"
# The first line of the lock; `make setup` and CI refuse a lock whose fingerprint differs.
FINGERPRINT_PREFIX = "# sha256 of pyproject.toml's requirements: "
# The CPU build of torch is a local file on our machines ("2.13.0+cpu"); the lock names the
# public version so that the same line installs on any machine (pip prefers the local build).
LOCAL_VERSION = re.compile(r"^(torch==[^+\s]+)\+\S+", re.MULTILINE)


def lock_inputs() -> dict[str, list[str]]:
    """What the lock is computed from: the requirements only, not the rest of pyproject.toml."""
    project = tomllib.loads(PYPROJECT.read_text())
    return {
        "dependencies": sorted(project["project"]["dependencies"]),
        "dev": sorted(project["project"]["optional-dependencies"]["dev"]),
        "build": sorted(project["build-system"]["requires"]),
        "requires-python": [project["project"]["requires-python"]],
    }


def fingerprint() -> str:
    text = json.dumps(lock_inputs(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def recorded_fingerprint() -> str | None:
    for line in LOCK.read_text().splitlines():
        if line.startswith(FINGERPRINT_PREFIX):
            return line[len(FINGERPRINT_PREFIX) :].strip()
    return None


def check() -> int:
    if not LOCK.exists():
        print(f"{LOCK.name} is missing: run `make lock` to create it", file=sys.stderr)
        return 1
    if recorded_fingerprint() != fingerprint():
        print(
            f"{LOCK.name} is out of date: pyproject.toml's dependencies (or its dev extra, build "
            "requirements or requires-python) changed since the lock was made.\n"
            "Run `make lock` and commit requirements.lock with the change.",
            file=sys.stderr,
        )
        return 1
    return 0


def regenerate(upgrade: bool) -> int:
    pip_compile = Path(sys.executable).parent / "pip-compile"
    command = [
        str(pip_compile),
        "--quiet",
        "--extra",
        "dev",
        "--all-build-deps",
        "--allow-unsafe",
        "--strip-extras",
        "--no-emit-find-links",
        "--no-emit-index-url",
        # relative paths, so the lock's comments are the same in every checkout
        "--output-file",
        LOCK.name,
        PYPROJECT.name,
    ]
    if upgrade:
        command.append("--upgrade")
    env = {**os.environ, "CUSTOM_COMPILE_COMMAND": "make lock"}
    result = subprocess.run(command, cwd=ROOT, env=env)
    if result.returncode != 0:
        return result.returncode
    text = LOCAL_VERSION.sub(r"\1", LOCK.read_text())
    body = "".join(
        line for line in text.splitlines(keepends=True) if not line.startswith(FINGERPRINT_PREFIX)
    )
    LOCK.write_text(f"{FINGERPRINT_PREFIX}{fingerprint()}\n{body}")
    print(f"wrote {LOCK.relative_to(ROOT)}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that the lock is current")
    parser.add_argument("--upgrade", action="store_true", help="newest allowed release of each")
    args = parser.parse_args()
    return check() if args.check else regenerate(args.upgrade)


if __name__ == "__main__":
    sys.exit(main())
