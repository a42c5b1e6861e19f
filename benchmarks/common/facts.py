"""Facts for a report: the machine, and which bridge code ran."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import io
import os
import platform
import re
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

from common import BenchmarkError

ROOT = Path(__file__).resolve().parent.parent.parent
"""The checkout."""
PACKAGE = "mqtt_gpio_bridge"


# -- the machine -----------------------------------------------------------------------------


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo ("" if it does not say)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return ""


def mosquitto_version() -> str:
    """The first line of `mosquitto -h` ("?" if it says nothing)."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            ["mosquitto", "-h"], capture_output=True, text=True, timeout=5, check=False
        ).stdout.splitlines()
        return out[0] if out else "?"
    return "?"


def bridge_libraries() -> str:
    """The bridge's own dependencies as installed (extras such as the demo's left out)."""
    versions = {}
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        for requirement in importlib.metadata.requires("mqtt-gpio-bridge") or []:
            if "extra ==" in requirement:
                continue
            name = re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0]
            with contextlib.suppress(importlib.metadata.PackageNotFoundError):
                versions[name] = importlib.metadata.version(name)
    return ", ".join(f"{k} {v}" for k, v in versions.items())


def machine_facts(*, cpu: bool = False, libraries: bool = False) -> dict[str, str]:
    """nproc, python, platform, (cpu), mosquitto, (libraries)."""
    facts = {
        "nproc": str(os.cpu_count()),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    if cpu and (model := cpu_model()):
        facts["cpu"] = model
    facts["mosquitto"] = mosquitto_version()
    if libraries:
        facts["libraries"] = bridge_libraries()
    return facts


# -- the code --------------------------------------------------------------------------------


def git(*args: str) -> str:
    """The output of a git command in the checkout ("" if it fails)."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        return subprocess.run(
            ["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    return ""


def head() -> str:
    """The short commit hash of HEAD ("" if git fails)."""
    return git("rev-parse", "--short", "HEAD").strip()


def changed_files(*paths: str) -> list[str]:
    """Files with uncommitted changes (below `paths`, or anywhere)."""
    out = git("status", "--porcelain", *(["--", *paths] if paths else []))
    return [line[3:].strip() for line in out.splitlines() if line.strip()]


def sources_sha256(package: Path = ROOT / PACKAGE) -> str:
    """A hash of a package's *.py files, sub-packages included (paths and bytes), 16 hex
    digits."""
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        name = path.relative_to(package).as_posix()
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def bridge_code_line() -> str:
    """`git <head>` and whether the package has uncommitted changes, and in which files."""
    changed = changed_files(PACKAGE)
    return f"git {head()}" + (
        f" + uncommitted changes in {', '.join(changed)}" if changed else " (clean)"
    )


@dataclass(frozen=True)
class BridgeCode:
    """Where the bridge process imports `mqtt_gpio_bridge` from, and what that is."""

    root: Path
    label: str
    sha256: str

    def env(self) -> dict[str, str]:
        return dict(os.environ, PYTHONPATH=str(self.root))


def bridge_code(ref: str | None, workdir: Path) -> BridgeCode:
    """The working tree's package, or (with `ref`) that commit's, exported with `git archive`.

    The export leaves the working tree, the index and the stash alone; the bridge process then
    finds it first on PYTHONPATH (the editable install's finder comes after sys.path).
    """
    if ref is None:
        changed = changed_files(PACKAGE)
        state = f"uncommitted changes in {', '.join(changed)}" if changed else "no changes"
        root, label = ROOT, f"working tree at {head()} ({state})"
    else:
        sha = git("rev-parse", "--short", f"{ref}^{{commit}}").strip()
        if not sha:
            raise BenchmarkError(f"git does not know the commit {ref!r}")
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", "--format=tar", sha, PACKAGE],
            capture_output=True,
            check=True,
        ).stdout
        root = workdir / f"code-{sha}"
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(root, filter="data")
        label = f"{ref} = {sha}, exported with git archive (not the working tree)"
    code = BridgeCode(root, label, sources_sha256(root / PACKAGE))
    found = subprocess.run(
        [sys.executable, "-c", "import mqtt_gpio_bridge; print(mqtt_gpio_bridge.__file__)"],
        capture_output=True,
        text=True,
        cwd=root,
        env=code.env(),
        check=False,
    ).stdout.strip()
    if not found.startswith(str(root / PACKAGE)):
        raise BenchmarkError(f"the bridge would import {found or 'nothing'}, not {root}")
    return code
