"""The local cluster's inference-records store: a real PostgreSQL server from
Debian's packages (`postgresql`), its data in a directory of the caller's, on a
free 127.0.0.1 port, reachable from the cluster's pods at one address that this
machine's clients use too (`expose_here_too`), so one DSN in a Secret works for
the model servers, the retraining Jobs and `modelrollout retrain` run here.

PostgreSQL refuses to run as root; as root (a CI machine, the dev container)
the server runs as the unprivileged `nobody` (setpriv), which owns the data
directory. Password authentication (scram-sha-256) with a password made at
initdb and kept in the data directory's parent, since the pods reach it over a
network.

As a command (`python -m modelrollout.devenv.postgres --workdir DIR`) it runs in
the foreground until SIGTERM or Ctrl-C. Dev and test tooling, not the operator.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

from modelrollout.devenv import network as net
from modelrollout.devenv.ports import free_port
from modelrollout.devenv.processes import serve_until_signalled, stop_group

READY_TIMEOUT_SECONDS = 60.0
BIND_ATTEMPTS = 3
USER = "modelrollout"
DATABASE = "records"
# Debian installs the server's programs under a versioned directory, not on PATH.
DEBIAN_BINARIES = Path("/usr/lib/postgresql")
UNPRIVILEGED_UID = 65534  # nobody


class PostgresServerError(RuntimeError):
    pass


def binary(name: str) -> Path:
    """initdb or postgres of the newest installed PostgreSQL."""
    versions = sorted(
        (p for p in DEBIAN_BINARIES.glob("*/bin") if (p / name).exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if versions:
        return versions[-1] / name
    found = shutil.which(name)
    if found is None:
        raise PostgresServerError(
            f"PostgreSQL's {name} is not installed: apt-get install postgresql "
            "(scripts/install-debian-deps.sh does)"
        )
    return Path(found)


class PostgresServer:
    """`postgres` on 127.0.0.1 for `workdir` (a restarted server has every row it had)."""

    def __init__(self, workdir: Path, network: net.NodeNetwork | None = None) -> None:
        self.workdir = workdir
        self.network = network
        self.port = free_port()
        self.data = workdir / "data"
        self.log_path = workdir / "postgres.log"
        self._password_file = workdir / "password"
        self._process: subprocess.Popen[bytes] | None = None
        self._address = ""

    @property
    def dsn(self) -> str:
        """For this machine, and (with a network) for the cluster's pods as well."""
        address = self._address or f"127.0.0.1:{self.port}"
        return f"postgresql://{USER}:{self.password}@{address}/{DATABASE}"

    @property
    def password(self) -> str:
        return self._password_file.read_text().strip()

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not (self.data / "PG_VERSION").exists():
            self._initdb()
        for attempt in range(BIND_ATTEMPTS):
            if self._launch():
                break
            log = self.log_path.read_text(errors="replace")[-3000:]
            # free_port() only found a port free: another process may take it first.
            if "could not bind" not in log or attempt == BIND_ATTEMPTS - 1:
                raise PostgresServerError(f"PostgreSQL did not start on port {self.port}:\n{log}")
            self.port = free_port()
        self._create_database()
        if self.network is not None:
            self._address = net.expose_here_too(self.network, self.port)

    def _launch(self) -> bool:
        """Start the server; False (and stopped) if it is not accepting in time."""
        command = [
            str(binary("postgres")), "-D", str(self.data),
            "-c", "listen_addresses=127.0.0.1", "-c", f"port={self.port}",
            "-c", f"unix_socket_directories={self.data}",
            "-c", "max_connections=200",
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [*self._as_owner(), *command],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while not _accepts(self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                return False
            time.sleep(0.2)
        return True

    def _as_owner(self) -> list[str]:
        """The command prefix that drops root (PostgreSQL refuses to run as root)."""
        if os.geteuid() != 0:
            return []
        uid = UNPRIVILEGED_UID
        return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--"]

    def _initdb(self) -> None:
        if self.data.exists():
            shutil.rmtree(self.data)  # an interrupted initdb: start over
        self.data.mkdir(mode=0o700)
        self._password_file.write_text(secrets.token_urlsafe(24) + "\n")
        self._password_file.chmod(0o600)
        # initdb reads the password from a file the server's user can read.
        handoff = self.workdir / ".initdb-password"
        handoff.write_text(self.password + "\n")
        if os.geteuid() == 0:
            for path in (self.data, handoff):
                os.chown(path, UNPRIVILEGED_UID, UNPRIVILEGED_UID)
            _let_pass(self.data.parent)
        initdb = [
            *self._as_owner(), str(binary("initdb")), "-D", str(self.data),
            "--username", USER, "--pwfile", str(handoff),
            "--auth-local=scram-sha-256", "--auth-host=scram-sha-256",
            "--encoding=UTF8", "--locale=C.UTF-8",
        ]  # fmt: skip
        done = subprocess.run(initdb, capture_output=True, text=True, check=False)
        handoff.unlink(missing_ok=True)
        if done.returncode != 0:
            raise PostgresServerError(f"initdb failed:\n{done.stderr[-2000:]}")
        # The pods come in over the node network, DNATed to 127.0.0.1.
        with (self.data / "pg_hba.conf").open("a") as hba:
            hba.write("host all all 0.0.0.0/0 scram-sha-256\n")

    def _create_database(self) -> None:
        import psycopg

        admin = f"postgresql://{USER}:{self.password}@127.0.0.1:{self.port}/postgres"
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as connection:
            exists = connection.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)
            ).fetchone()
            if exists is None:
                connection.execute(f"CREATE DATABASE {DATABASE}")

    def stop(self) -> None:
        if self.network is not None and self._address:
            net.unexpose(self.network, self.port)
            self._address = ""
        if self._process is not None and self._process.poll() is None:
            stop_group(self._process.pid, grace_seconds=10)
            self._process.wait(timeout=30)
        self._process = None

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _let_pass(directory: Path) -> None:
    """Let the server's user reach its data directory: search (x) permission on every
    directory above it, which a private temporary directory (0700) lacks. Nothing
    becomes listable or readable."""
    for path in (directory, *directory.parents):
        mode = path.stat().st_mode
        if not mode & 0o001:
            path.chmod((mode & 0o7777) | 0o001)


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def main(argv: list[str] | None = None) -> int:
    return serve_until_signalled(
        argv,
        prog="python -m modelrollout.devenv.postgres",
        description="The local cluster's inference-records store (PostgreSQL), until stopped.",
        server=PostgresServer,
        announce=lambda it: f"MODELSERVER_RECORDS_DSN={it.dsn}",
    )


if __name__ == "__main__":
    sys.exit(main())
