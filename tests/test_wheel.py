"""A wheel installed into a fresh venv works as well as the checkout.

The wheel is built from this checkout without build isolation (the dev extras bring setuptools
and wheel) and installed with --no-deps --no-index, so nothing is downloaded; the new venv sees
the dependencies through a path file naming this venv's site-packages. Path files inside that
directory are not processed from there, so the checkout's editable tracker stays invisible and the
commands below run the installed wheel, from a directory outside the checkout.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, f"{cmd} exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_runs_demo_and_db_upgrade(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    # Build from a copy: setuptools writes build/ and *.egg-info into the source tree.
    src = tmp_path / "src"
    _run(["git", "clone", "-q", "--no-hardlinks", str(ROOT), str(src)], tmp_path)
    # A clone holds what is committed; overlay the working files so uncommitted edits count too.
    for rel in _run(["git", "ls-files", "-co", "--exclude-standard"], ROOT).splitlines():
        target = src / rel
        if (ROOT / rel).is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes((ROOT / rel).read_bytes())
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(dist),
            str(src),
        ],
        tmp_path,
    )
    wheels = list(dist.glob("tracker-*.whl"))
    assert len(wheels) == 1
    names = zipfile.ZipFile(wheels[0]).namelist()
    assert any(n.endswith("share/tracker/migrations/env.py") for n in names)
    assert any(n.endswith("share/tracker/templates/email/failed.txt.j2") for n in names)

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path)
    site_packages = Path(
        sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)})
    )
    (site_packages / "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(venv / "bin" / "python"),
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            str(wheels[0]),
        ],
        tmp_path,
    )
    tracker = venv / "bin" / "tracker"
    assert tracker.exists()
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKER_")}
    env["PYTHONPATH"] = ""
    where = _run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import tracker, tracker.paths as p; print(tracker.__file__); print(p.MIGRATIONS_DIR)",
        ],
        work,
        env,
    ).splitlines()
    assert str(venv) in where[0], where  # the wheel, not the checkout
    assert str(venv) in where[1], where

    out = _run([str(tracker), "demo", "--dir", str(work / "world")], work, env)
    assert "linux-6.1.y" in out
    cfg = next((work / "world").glob("*.toml"))
    out = _run([str(tracker), "--config", str(cfg), "db", "upgrade"], work, env)
    assert "database at revision" in out
    init = work / "init.toml"
    _run([str(tracker), "init", str(init)], work, env)
    assert "[[branches]]" in init.read_text()
