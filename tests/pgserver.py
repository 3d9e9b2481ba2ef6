"""A private PostgreSQL server for the tests: Debian's binaries, a cluster in a temp dir.

It listens on a Unix socket only (no TCP at all), so nothing leaves the machine. Under root the
server runs as the `postgres` user (PostgreSQL refuses root); otherwise as the current user.
TRACKER_TEST_POSTGRES_URL, when set, names an existing server to use instead (each test still
gets a database of its own).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


class NoPostgres(RuntimeError):
    """No server binaries and no TRACKER_TEST_POSTGRES_URL."""


def _bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise NoPostgres("PostgreSQL server binaries not found (Debian: apt-get install postgresql)")


class PostgresServer:
    def __init__(self) -> None:
        self.url: str
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir: Path | None = None

    def start(self) -> None:
        existing = os.environ.get("TRACKER_TEST_POSTGRES_URL")
        if existing:
            self.url = existing
            return
        bindir = _bindir()
        self._dir = Path(tempfile.mkdtemp(prefix="tracker-pg-"))
        data, sock = self._dir / "data", self._dir / "sock"
        data.mkdir()
        sock.mkdir()
        run_as: list[str] = []
        user = pwd.getpwuid(os.geteuid()).pw_name
        if os.geteuid() == 0:
            pg = pwd.getpwnam("postgres")
            for p in (self._dir, data, sock):
                os.chown(p, pg.pw_uid, pg.pw_gid)
            run_as = ["runuser", "-u", "postgres", "--"]
            user = "postgres"
        subprocess.run(
            [
                *run_as,
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-A",
                "trust",
                "-U",
                user,
                "-E",
                "UTF8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
        )
        log = self._log_file()
        self._proc = subprocess.Popen(
            [
                *run_as,
                str(bindir / "postgres"),
                "-D",
                str(data),
                "-k",
                str(sock),
                "-c",
                "listen_addresses=",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
            ],
            stdout=subprocess.DEVNULL,
            # A file, not a pipe: nobody reads the server's log while it runs, and a full pipe
            # would stop the server.
            stderr=log,
        )
        os.close(log)
        self.url = f"postgresql+psycopg://{user}@/postgres?host={sock}"
        deadline = time.monotonic() + 30
        while True:
            try:
                engine = create_engine(self.url)
                with engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
                engine.dispose()
                return
            except Exception:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    log = (self._dir / "server.log").read_text(errors="replace")
                    raise RuntimeError(f"postgres did not start: {log[-500:]}") from None
                time.sleep(0.1)

    def _log_file(self) -> int:
        assert self._dir is not None
        return os.open(self._dir / "server.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)

    def create_database(self, template: str | None = None) -> str:
        """A new database (empty, or a copy of ``template``'s) for one test."""
        name = "t_" + uuid.uuid4().hex[:16]
        clause = f' TEMPLATE "{make_url(template).database}"' if template else ""
        admin = create_engine(self.url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"{clause}'))
        finally:
            admin.dispose()
        return make_url(self.url).set(database=name).render_as_string(hide_password=False)

    def drop_database(self, url: str) -> None:
        admin = create_engine(self.url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                name = make_url(url).database
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        finally:
            admin.dispose()
