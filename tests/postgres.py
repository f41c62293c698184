"""A PostgreSQL server for the tests and benchmarks: CI's, or a throwaway one started here.

``.ci/run`` starts a server and exports its URL as ``AGENTCORE_TEST_POSTGRES_URL``; then the
tests use it and fail (never skip) if it cannot be reached, as they do in CI without it.
Without the variable, a throwaway cluster is started in a temporary folder (``initdb`` and
``pg_ctl`` of PostgreSQL 15, as the ``postgres`` user when running as root), on 127.0.0.1 and a
free port, and stopped at the end. Without PostgreSQL installed, the PostgreSQL variants of the
tests are skipped, saying why.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg

URL_VARIABLE = "AGENTCORE_TEST_POSTGRES_URL"
BIN = Path("/usr/lib/postgresql/15/bin")
# A throwaway cluster need not survive a power cut: no fsync makes creating databases fast.
FAST = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"


class Unavailable(Exception):
    """No server, and none can be started here."""


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """The URL of a server's maintenance database (``postgres``), for the duration."""
    url = os.environ.get(URL_VARIABLE)
    if url:
        _check_reachable(url)
        yield url
        return
    if not (BIN / "initdb").exists():
        if os.environ.get("CI"):  # CI must run them: .ci/run starts a server and sets the URL
            raise RuntimeError(f"CI, but {URL_VARIABLE} is unset and {BIN} has no PostgreSQL")
        raise Unavailable(f"PostgreSQL 15 is not installed ({BIN}) and {URL_VARIABLE} is unset")
    with throwaway_cluster() as started:
        yield started


def _check_reachable(url: str) -> None:
    async def probe() -> None:
        conn = await asyncpg.connect(url, timeout=10)
        await conn.close()

    try:
        asyncio.run(probe())
    except Exception as exc:
        raise RuntimeError(f"{URL_VARIABLE} is set but its server cannot be used: {exc}") from exc


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[str]:
    """Start a fresh cluster in a temporary folder; stop and remove it afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="agentcore-pg-"))
    try:
        with cluster(folder, FAST) as url:
            yield url
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def cluster(folder: Path, options: str = "") -> Iterator[str]:
    """Run the cluster kept in ``folder`` (created there the first time) with server
    ``options``, on 127.0.0.1 and a free port, until the end of the block. It asks for a
    password over TCP, as a real server does (so a wrong one can be tried)."""
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    data, pwfile = folder / "data", folder / "password"
    folder.mkdir(parents=True, exist_ok=True)
    if not data.exists():
        pwfile.write_text(secrets.token_hex(8))
        if as_postgres:
            shutil.chown(folder, "postgres", "postgres")
            shutil.chown(pwfile, "postgres", "postgres")
        _run([*as_postgres, str(BIN / "initdb"), "-D", str(data), "-U", "postgres",
              "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}",
              "-E", "UTF8", "--locale=C.UTF-8"])  # fmt: skip
    port = free_port()
    server = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={folder}"
    _run([*as_postgres, str(BIN / "pg_ctl"), "-D", str(data), "-o", f"{server} {options}",
          "-l", str(folder / "server.log"), "-w", "start"])  # fmt: skip
    try:
        yield f"postgresql://postgres:{pwfile.read_text()}@127.0.0.1:{port}/postgres"
    finally:
        _run([*as_postgres, str(BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _run(command: list[str]) -> None:
    subprocess.run(command, check=True, capture_output=True, cwd="/")


_names = itertools.count()


def database_url(server: str, name: str) -> str:
    """The URL of database ``name`` on the same server."""
    return server.rsplit("/", 1)[0] + "/" + name


async def fresh_database(server: str) -> str:
    """Create an empty database with a new name; its URL."""
    name = f"agentcore_test_{os.getpid()}_{next(_names)}"
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    return database_url(server, name)


async def empty_database(url: str) -> None:
    """Delete every row (the schema and its version stay), and restart the ids."""
    conn = await asyncpg.connect(url)
    try:
        tables = await conn.fetch(
            "SELECT quote_ident(tablename) AS name FROM pg_tables "
            "WHERE schemaname = 'public' AND tablename <> 'schema_migrations'"
        )
        names = ", ".join(t["name"] for t in tables)
        await conn.execute(f"TRUNCATE {names} RESTART IDENTITY")
    finally:
        await conn.close()


async def drop_database(server: str, url: str) -> None:
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")
    finally:
        await conn.close()


async def end_lock_holders(url: str, space: int, pid: int | None = None) -> list[int]:
    """End the sessions holding advisory locks of ``space`` (``PERSON_LOCKS``, ``ROLE_LOCKS``),
    as a failover or an operator's pg_terminate_backend would; only those of the bot process
    ``pid``, if given (its sessions are named after it). The backends' pids, once gone."""
    conn = await asyncpg.connect(url)
    try:
        ended = [
            r["pid"]
            for r in await conn.fetch(
                "SELECT l.pid, pg_terminate_backend(l.pid) AS ended FROM pg_locks l "
                "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' "
                "AND l.granted AND l.classid = $1::oid AND l.objsubid = 2 "
                "AND ($2::text IS NULL OR a.application_name = $2)",
                space,
                None if pid is None else f"agentcore {pid}",
            )
            if r["ended"]
        ]
        gone = "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1::int[])"
        while await conn.fetchval(gone, ended):
            pass  # a terminated backend exits at once
    finally:
        await conn.close()
    return ended


async def lock_holders(url: str, space: int, key: int | None = None) -> list[str]:
    """The application names (``agentcore <pid>``) of the sessions holding locks of ``space``
    (only lock ``key``, if given)."""
    conn = await asyncpg.connect(url)
    try:
        found = await conn.fetch(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1::oid "
            "AND l.objsubid = 2 AND ($2::bigint IS NULL OR l.objid = $2::bigint::oid)",
            space,
            None if key is None else key & 0xFFFFFFFF,  # the oid holds the int4 unsigned
        )
    finally:
        await conn.close()
    return [r["application_name"] for r in found]
