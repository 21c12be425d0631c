"""The floor under the storage step of an ingest: what the databases themselves cost.

    .venv/bin/python benchmarks/storage_floor_bench.py --rows 1000000 \
        [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/reintegration_bench]

``ingest_bench.py`` measures the storage step of ``ingest_file``. This script measures what
no ingest code can go below, on the same rows, in the same run:

1. Ingests a synthetic batch of ``--rows`` interviews into a fresh SQLite store (the source).
2. SQLite, into fresh stores with the app's schema, each in one transaction with its commit:
   ``INSERT … SELECT`` of the source's submission, score and returnee rows (no Python at all:
   the floor of SQLite's own work), then the same rows fetched beforehand as tuples and
   inserted with ``executemany`` one row per statement (that floor plus the Python driver's
   binding of every value). Prints seconds, rows/s and the ratio of the two.
3. With ``--postgres``: the source's submission rows as CSV, sent with ``COPY`` into a table
   of the app's submission columns (in a scratch schema, dropped after) with its primary key
   only, then with the indexes the data model needs (the identity, unique; the returnee's
   panel; the batch). The client only streams bytes: the seconds are the server's. Prints
   each and the ratio.

Compare the floors with the storage step ``ingest_bench.py`` prints: the targets of the issue
(50,000 rows/s on SQLite, 75,000 on PostgreSQL) are 20 s and 13.3 s per million rows.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
COMMAND = Path(sys.executable).with_name("reintegration")
TABLES = ("submission", "score", "returnee")
INDEXES = {
    "the identity (unique)": "CREATE UNIQUE INDEX ON {t} (submission_id, version)",
    "the returnee's panel": "CREATE INDEX ON {t} (returnee_key, interview_date)",
    "the batch": "CREATE INDEX ON {t} (batch_id)",
}


def fresh_store(folder: Path, name: str) -> Path:
    """An empty SQLite store with the app's schema, made by the app itself."""
    from reintegration.store.engine import open_store

    path = folder / f"{name}.db"
    open_store(f"sqlite:///{path}").dispose()
    return path


def connect(path: Path) -> sqlite3.Connection:
    """The pragmas of the app's SQLite connections (reintegration.store.engine)."""
    from reintegration.store.engine import CACHE_KIB

    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    return conn


def sqlite_floors(source: Path, folder: Path) -> tuple[float, float, int]:
    order = {"submission": "id", "score": "submission_pk", "returnee": "key"}
    # 1. INSERT ... SELECT: no Python between the two databases.
    conn = connect(fresh_store(folder, "select"))
    conn.execute(f"ATTACH '{source}' AS src")
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("PRAGMA defer_foreign_keys = ON")
    conn.execute("INSERT INTO batch SELECT * FROM src.batch")
    start = time.perf_counter()
    for table in TABLES:
        conn.execute(f"INSERT INTO {table} SELECT * FROM src.{table} ORDER BY {order[table]}")
    conn.execute("COMMIT")
    pure = time.perf_counter() - start
    conn.close()
    # 2. The same rows as Python tuples through executemany.
    src = sqlite3.connect(source)
    rows = {t: src.execute(f"SELECT * FROM {t} ORDER BY {order[t]}").fetchall() for t in TABLES}
    batch_rows = src.execute("SELECT * FROM batch").fetchall()
    src.close()
    conn = connect(fresh_store(folder, "bound"))
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("PRAGMA defer_foreign_keys = ON")
    conn.executemany(
        f"INSERT INTO batch VALUES ({', '.join('?' * len(batch_rows[0]))})", batch_rows
    )
    start = time.perf_counter()
    for table in TABLES:
        marks = ", ".join("?" * len(rows[table][0]))
        conn.executemany(f"INSERT INTO {table} VALUES ({marks})", rows[table])
    conn.execute("COMMIT")
    bound = time.perf_counter() - start
    conn.close()
    return pure, bound, len(rows["submission"])


def postgres_floors(source: Path, url: str) -> dict[str, float]:
    import psycopg

    src = sqlite3.connect(source)
    names = [row[1] for row in src.execute("PRAGMA table_info(submission)")]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in src.execute("SELECT * FROM submission ORDER BY id"):
        writer.writerow(["" if v is None else v for v in row])
    src.close()
    data = buffer.getvalue().encode()
    types = {
        "id": "integer PRIMARY KEY",
        "version": "integer",
        "current": "boolean",
        "interview_date": "date",
        "return_date": "date",
        "months_since_return": "double precision",
        "survey_round": "integer",
        "age_at_return": "integer",
        "answers": "json",
        "created_at": "timestamptz",
    }
    spec = ", ".join(f"{n} {types.get(n, 'varchar')}" for n in names)
    results: dict[str, float] = {}
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        for label, indexes in (
            ("primary key only", []),
            ("with the data model's indexes", list(INDEXES.values())),
        ):
            conn.execute("DROP SCHEMA IF EXISTS floor_bench CASCADE")
            conn.execute("CREATE SCHEMA floor_bench")
            conn.execute(f"CREATE TABLE floor_bench.submission ({spec})")
            for index in indexes:
                conn.execute(index.format(t="floor_bench.submission"))
            conn.execute("CHECKPOINT")
            start = time.perf_counter()
            with conn.transaction(), conn.cursor() as cursor:
                with cursor.copy("COPY floor_bench.submission FROM STDIN (FORMAT csv)") as copy:
                    for k in range(0, len(data), 1 << 20):
                        copy.write(data[k : k + (1 << 20)])
            results[label] = time.perf_counter() - start
        conn.execute("DROP SCHEMA floor_bench CASCADE")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--postgres", help="a PostgreSQL database to use (a scratch schema)")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from ingest_bench import child_env, make_batch

    with tempfile.TemporaryDirectory(prefix="storage-floor-") as tmp:
        folder = Path(tmp)
        print(f"generating and ingesting {args.rows:,} rows (the source) …", flush=True)
        make_batch(args.rows, folder)
        home = folder / "home"
        home.mkdir()
        env = child_env(home, secrets.token_hex(32))
        subprocess.run(
            [str(COMMAND), "ingest", str(folder / "batch.csv"), "--json"],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        source = home / "reintegration.db"
        os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
        pure, bound, n = sqlite_floors(source, folder)
        print(f"\nSQLite, {n:,} submissions with their scores and returnees, commit included:")
        print(f"  INSERT … SELECT (no Python):       {pure:6.2f} s, {n / pure:>9,.0f} rows/s")
        print(f"  executemany of prepared tuples:    {bound:6.2f} s, {n / bound:>9,.0f} rows/s")
        print(f"  ratio (the driver's binding):      {bound / pure:6.2f}x")
        if args.postgres:
            found = postgres_floors(source, args.postgres)
            print(f"\nPostgreSQL, COPY of {n:,} submission rows (server time; no score rows):")
            for label, seconds in found.items():
                print(f"  {label:32s} {seconds:6.2f} s, {n / seconds:>9,.0f} rows/s")
            ratio = found["with the data model's indexes"] / found["primary key only"]
            print(f"  ratio (the indexes' upkeep):       {ratio:6.2f}x")
        print(
            "\ntargets of the storage step per million rows: SQLite 20.0 s (50,000 rows/s), "
            "PostgreSQL 13.3 s (75,000 rows/s)"
        )


if __name__ == "__main__":
    main()
