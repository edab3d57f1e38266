"""A throwaway PostgreSQL cluster for the tests: a real server on 127.0.0.1, gone when the session ends.

`PostgresCluster` runs `initdb` into a fresh temporary directory, starts the server with `pg_ctl` on a free
loopback port (unix sockets stay inside the temporary directory, so nothing touches /var/run/postgresql or a
system cluster) and hands out one database per test as a SQLAlchemy URL. Durability is switched off
(fsync, synchronous_commit, full_page_writes): a crash loses nothing a test needs.

Running as root (CI): PostgreSQL refuses to run as root, so `initdb` and `pg_ctl` are run as the `postgres`
system user (created by Debian's postgresql-15 package) through `runuser -u postgres --` (or `su` where
runuser is missing), and the temporary directory is chowned to that user. It is made under the system
temporary directory, which must therefore be reachable by `postgres` (it is for /tmp; a TMPDIR under /root is
not, and start() says so). Client tools (`createdb`, `dropdb`) run as the calling user over TCP.

Fixtures (plain functions; tests/conftest.py imports them to register them):

- `postgres_cluster` (session): the running cluster.
- `postgres_url` (function): a fresh, uniquely named database, as `postgresql+psycopg://feedlens@127.0.0.1:PORT/NAME`;
  dropped after the test.

Missing binaries fail the fixture with a message saying how to install them; set
FEEDLENS_TEST_SKIP_POSTGRES=1 to skip those tests instead.
"""

from __future__ import annotations

import os
import pwd
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from subprocess import CompletedProcess
from types import TracebackType

import pytest

SKIP_ENV = "FEEDLENS_TEST_SKIP_POSTGRES"
SUPERUSER = "feedlens"
HOST = "127.0.0.1"
SYSTEM_USER = "postgres"
LIB_ROOT = Path("/usr/lib/postgresql")
INSTALL_HINT = "install it with `sudo bash scripts/install-system-deps.sh` (Debian package postgresql-15)"

_TOOLS = ("initdb", "pg_ctl", "createdb", "dropdb")
# Database names go into URLs and command lines unquoted, so keep them to plain identifiers.
_DB_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_START_ATTEMPTS = 3
_TIMEOUT_S = 60


@dataclass(frozen=True)
class PostgresBinaries:
    """Paths of the PostgreSQL programs the cluster runs."""

    initdb: Path
    pg_ctl: Path
    createdb: Path
    dropdb: Path


def _version_key(bindir: Path) -> tuple[int, ...]:
    """Sort key for /usr/lib/postgresql/<version>/bin: '15' > '9.6'; odd names sort first."""
    try:
        return tuple(int(part) for part in bindir.parent.name.split("."))
    except ValueError:
        return (-1,)


def _tools_in(bindir: Path) -> PostgresBinaries | None:
    paths = [bindir / tool for tool in _TOOLS]
    if all(path.is_file() and os.access(path, os.X_OK) for path in paths):
        return PostgresBinaries(*paths)
    return None


def find_binaries(lib_root: Path = LIB_ROOT, path: str | None = None) -> PostgresBinaries | None:
    """The newest version under `lib_root` (Debian's layout), else the programs on `path` (default $PATH)."""
    for bindir in sorted(lib_root.glob("*/bin"), key=_version_key, reverse=True):
        found = _tools_in(bindir)
        if found is not None:
            return found
    located = {tool: shutil.which(tool, path=path) for tool in _TOOLS}
    if not all(located.values()):
        return None
    # Prefer the client tools that sit beside the real initdb (PATH may hold only symlinks to server tools).
    beside = _tools_in(Path(str(located["initdb"])).resolve().parent)
    if beside is not None:
        return beside
    return PostgresBinaries(*(Path(str(located[tool])) for tool in _TOOLS))


def _as_root() -> bool:
    return os.geteuid() == 0


def postgres_available(lib_root: Path = LIB_ROOT, path: str | None = None) -> str | None:
    """None when a cluster can be started here; otherwise why not (meant for a test failure message)."""
    if find_binaries(lib_root, path) is None:
        return (
            f"PostgreSQL server binaries ({', '.join(_TOOLS)}) not found in {lib_root}/*/bin or on PATH; "
            f"{INSTALL_HINT}"
        )
    if _as_root():
        try:
            pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            return (
                f"running as root but there is no '{SYSTEM_USER}' user to run PostgreSQL as; {INSTALL_HINT}"
            )
        if shutil.which("runuser") is None and shutil.which("su") is None:
            return "running as root but neither runuser nor su is available to drop to the postgres user"
    return None


def require_postgres(lib_root: Path = LIB_ROOT, path: str | None = None) -> None:
    """Fail the calling test when PostgreSQL is missing, or skip it when FEEDLENS_TEST_SKIP_POSTGRES=1."""
    reason = postgres_available(lib_root, path)
    if reason is None:
        return
    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(f"{reason} ({SKIP_ENV}=1)")
    pytest.fail(f"{reason}; or set {SKIP_ENV}=1 to skip the PostgreSQL tests", pytrace=False)


def _free_port() -> int:
    # The port is free now; another process may take it before the server binds, hence the start retries.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _clean_env() -> dict[str, str]:
    """The caller's environment without PG* variables, which would redirect the client tools elsewhere."""
    return {key: value for key, value in os.environ.items() if not key.startswith("PG")}


class PostgresClusterError(RuntimeError):
    """The throwaway cluster could not be created, started or used."""


class PostgresCluster:
    """A private PostgreSQL server in a temporary directory; use as a context manager or start()/stop()."""

    def __init__(self, binaries: PostgresBinaries | None = None) -> None:
        self._binaries = binaries
        self._tmpdir: Path | None = None
        self._port: int | None = None

    # -- state -------------------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._port is not None

    @property
    def port(self) -> int:
        if self._port is None:
            raise PostgresClusterError("the cluster is not running")
        return self._port

    @property
    def tmpdir(self) -> Path:
        """The directory holding the data directory, the unix socket and the server log."""
        if self._tmpdir is None:
            raise PostgresClusterError("the cluster is not running")
        return self._tmpdir

    @property
    def data_dir(self) -> Path:
        return self.tmpdir / "data"

    @property
    def log_file(self) -> Path:
        return self.tmpdir / "postgres.log"

    # -- lifecycle ---------------------------------------------------------------------------------------

    def start(self) -> PostgresCluster:
        """initdb into a fresh temporary directory and start the server; returns self."""
        if self.running:
            return self
        if self._binaries is None:
            reason = postgres_available()
            if reason is not None:
                raise PostgresClusterError(reason)
            self._binaries = find_binaries()
        self._tmpdir = Path(tempfile.mkdtemp(prefix="feedlens-pg-"))
        try:
            self._prepare_tmpdir()
            self._initdb()
            self._port = self._start_server()
        except BaseException:
            self._shut_down()  # a start that timed out may still have left a server running
            raise
        return self

    def stop(self) -> None:
        """Stop the server at once (no checkpoint: the data is thrown away) and delete the temporary dir."""
        self._shut_down()

    def __enter__(self) -> PostgresCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- databases ---------------------------------------------------------------------------------------

    def url(self, name: str) -> str:
        """SQLAlchemy URL (psycopg 3 driver) of database `name`; no password: the cluster trusts loopback."""
        return f"postgresql+psycopg://{SUPERUSER}@{HOST}:{self.port}/{name}"

    def libpq_url(self, name: str) -> str:
        """The same database as a libpq URL, for psycopg.connect() or psql."""
        return f"postgresql://{SUPERUSER}@{HOST}:{self.port}/{name}"

    def create_database(self, name: str) -> str:
        """Create database `name` (a lowercase identifier) and return its SQLAlchemy URL."""
        self._check_name(name)
        self._run_client_tool([*self._client(self._tools().createdb), "--encoding=UTF8", "--", name])
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop database `name`, closing any connections a test left open."""
        self._check_name(name)
        self._run_client_tool([*self._client(self._tools().dropdb), "--if-exists", "--force", "--", name])

    # -- internals ---------------------------------------------------------------------------------------

    def _tools(self) -> PostgresBinaries:
        if self._binaries is None:
            raise PostgresClusterError("the cluster has not been started")
        return self._binaries

    def _client(self, tool: Path) -> list[str]:
        return [str(tool), "-h", HOST, "-p", str(self.port), "-U", SUPERUSER, "-w"]

    @staticmethod
    def _check_name(name: str) -> None:
        if not _DB_NAME.fullmatch(name):
            raise ValueError(f"database name must match {_DB_NAME.pattern}: {name!r}")

    def _prepare_tmpdir(self) -> None:
        if not _as_root():
            return
        entry = pwd.getpwnam(SYSTEM_USER)
        os.chown(self.tmpdir, entry.pw_uid, entry.pw_gid)
        probe = self._wrap([_which_or("test", "/usr/bin/test"), "-w", str(self.tmpdir)])
        if subprocess.run(probe, cwd="/", env=_clean_env(), check=False, timeout=_TIMEOUT_S).returncode != 0:
            raise PostgresClusterError(
                f"the '{SYSTEM_USER}' user cannot write to {self.tmpdir}; "
                "point TMPDIR at a directory every user can reach (such as /tmp)"
            )

    def _initdb(self) -> None:
        binaries = self._tools()
        self._run_server_tool(
            [
                str(binaries.initdb),
                "-D",
                str(self.data_dir),
                "--auth=trust",
                f"--username={SUPERUSER}",
                "--encoding=UTF8",
                # The C locale always exists and agrees with UTF8, whatever LANG the caller has.
                "--no-locale",
                "--no-sync",
            ]
        )
        settings = {
            "listen_addresses": f"'{HOST}'",
            "unix_socket_directories": f"'{self.tmpdir}'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        with (self.data_dir / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write("\n# feedlens test cluster\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def _start_server(self) -> int:
        binaries = self._tools()
        attempt = 0
        while True:
            attempt += 1
            port = _free_port()
            result = self._run_server_tool(
                [
                    str(binaries.pg_ctl),
                    "-D",
                    str(self.data_dir),
                    "-l",
                    str(self.log_file),
                    "-o",
                    f"-p {port}",
                    "-t",
                    str(_TIMEOUT_S),
                    "-w",
                    "start",
                ],
                check=False,
            )
            if result.returncode == 0:
                return port
            log = self._log_tail()
            if "could not bind" not in log or attempt == _START_ATTEMPTS:
                raise PostgresClusterError(f"pg_ctl start failed:\n{result.stdout}{result.stderr}\n{log}")

    def _log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _wrap(self, argv: Sequence[str]) -> list[str]:
        """argv as the postgres system user when we are root (PostgreSQL refuses root), else unchanged."""
        if not _as_root():
            return list(argv)
        runuser = shutil.which("runuser")
        if runuser is not None:
            return [runuser, "-u", SYSTEM_USER, "--", *argv]
        return [_which_or("su", "/bin/su"), SYSTEM_USER, "-s", "/bin/sh", "-c", shlex.join(argv)]

    def _run_server_tool(self, argv: Sequence[str], *, check: bool = True) -> CompletedProcess[str]:
        # cwd is the temporary directory: the postgres user may not be allowed into the caller's cwd.
        result = subprocess.run(
            self._wrap(argv),
            cwd=self.tmpdir,
            env=_clean_env(),
            capture_output=True,
            text=True,
            check=False,
            timeout=_TIMEOUT_S * 2,
        )
        if check and result.returncode != 0:
            raise PostgresClusterError(f"{shlex.join(argv)} failed:\n{result.stdout}{result.stderr}")
        return result

    def _run_client_tool(self, argv: Sequence[str]) -> None:
        result = subprocess.run(
            list(argv), env=_clean_env(), capture_output=True, text=True, check=False, timeout=_TIMEOUT_S
        )
        if result.returncode != 0:
            raise PostgresClusterError(f"{shlex.join(argv)} failed:\n{result.stdout}{result.stderr}")

    def _shut_down(self) -> None:
        """Stop whatever server the data directory holds, then delete the temporary directory."""
        try:
            if (
                self._tmpdir is not None
                and self._binaries is not None
                and (self.data_dir / "postmaster.pid").exists()
            ):
                self._run_server_tool(
                    [str(self._binaries.pg_ctl), "-D", str(self.data_dir), "-m", "immediate", "-w", "stop"],
                    check=False,
                )
        finally:
            self._port = None
            if self._tmpdir is not None:
                shutil.rmtree(self._tmpdir, ignore_errors=True)
                self._tmpdir = None


def _which_or(program: str, fallback: str) -> str:
    return shutil.which(program) or fallback


def unique_database_name(label: str) -> str:
    """A database name that is unique and still says which test made it: t_<label>_<8 hex>."""
    slug = re.sub(r"[^a-z0-9_]+", "_", label.lower()).strip("_")
    return f"t_{slug[:48]}_{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """One running throwaway cluster for the whole test session (fails, or skips, without PostgreSQL)."""
    require_postgres()
    with PostgresCluster() as cluster:
        yield cluster


@pytest.fixture
def postgres_url(postgres_cluster: PostgresCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """SQLAlchemy URL of a fresh database for this test, dropped afterwards."""
    name = unique_database_name(request.node.name)
    url = postgres_cluster.create_database(name)
    yield url
    postgres_cluster.drop_database(name)
