"""Benchmark `reintegration ingest` on SQLite (and PostgreSQL) against the parse floor.

    .venv/bin/python benchmarks/ingest_bench.py --rows 100000 [--rows 1000000] \
        [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/reintegration_bench] \
        [--repeats 1] [--timeout 900]

For each ``--rows``:

1. Generates a canonical CSV of that many interviews with the synthetic generator (three
   rounds, about 2.5 rows per returnee), in a child process.
2. Alternates, ``--repeats`` times, fresh processes: the *parse floor* (Python that reads the
   file with ``pyarrow.csv.read_csv`` and nothing else); the whole ``reintegration ingest FILE
   --json`` command into a fresh SQLite store (``REINTEGRATION_HOME`` in a temporary folder),
   then the same command again on the same file (every row a duplicate: re-uploads are
   common); with ``--postgres``, the same two into PostgreSQL, its ``public`` schema dropped
   and recreated first. Each command's wall time and peak memory (``ru_maxrss`` of that child,
   from ``os.wait4``) are recorded.
3. For the storage step alone, a child that calls ``ingest_file`` in-process with a
   ``timings`` dict, twice (the second time all duplicates), on a fresh store of each kind:
   storage rows/s = accepted rows / ``timings["store"]`` of the first call. It also reports
   ``timings["prepare"]`` and its own start-up, so the end-to-end time can be split. Both are
   wall-clock spans of the ingesting thread: on PostgreSQL a chunk's COPY runs in the
   background while the next chunk is prepared, so the server's work on it is partly inside
   ``prepare`` and only the rest (waiting for it) inside ``store``.

Targets (the issue): 1M rows end to end into SQLite in under 60 s; storage step
at least 50,000 rows/s on SQLite and 75,000 rows/s on PostgreSQL; peak memory under 1.5 GB.

This process imports only the standard library and never holds a batch or a report in
memory: a child's ``ru_maxrss`` starts from its parent's peak resident size (fork and exec keep
the high-water mark), so a large parent would inflate every figure. PostgreSQL's peak is the
client's only; the server's memory is not counted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

COMMAND = Path(sys.executable).with_name("reintegration")
ATTRITION_ROWS_PER_RETURNEE = 2.5  # three rounds with attrition give about this many rows
COUNTS = ("received", "accepted", "rejected", "duplicate", "updated")
MB = 2**20
TARGET_SECONDS_PER_MILLION = 60.0
TARGET_STORE_RATE = {"sqlite": 50_000, "postgres": 75_000}
TARGET_PEAK_MB = 1536
STDERR_TAIL = 6000  # characters of a failed child's stderr to show
JSON_LIMIT = 4 * MB  # larger reports (many errors) are not parsed here: see report_counts


# -- children --------------------------------------------------------------------------------


class ChildFailed(Exception):
    """A child process failed, timed out or printed something unexpected."""


@dataclass
class Child:
    seconds: float
    peak_mb: float
    status: int
    stdout: str


def _head(fh, limit: int) -> str:  # type: ignore[no-untyped-def]
    fh.seek(0)
    return fh.read(limit).decode("utf-8", "replace")


def _tail(fh, limit: int) -> str:  # type: ignore[no-untyped-def]
    size = fh.seek(0, os.SEEK_END)
    fh.seek(max(0, size - limit))
    text = fh.read().decode("utf-8", "replace")
    return ("…" if size > limit else "") + text


def run_child(
    label: str,
    argv: list[str],
    *,
    env: dict[str, str] | None = None,
    timeout: float,
    ok: tuple[int, ...] = (0,),
    stdout_limit: int = JSON_LIMIT,
) -> Child:
    """Run one fresh process; its wall seconds, peak resident memory (MB) and stdout.

    stdout and stderr go to temporary files (no pipe can fill up while this process waits in
    ``os.wait4``). The child runs in its own session; a timer kills the whole session after
    ``timeout`` seconds, and an interrupt of this process kills it too.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        timed_out = threading.Event()
        start = time.perf_counter()
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, start_new_session=True
        )

        def kill() -> None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        def on_timeout() -> None:
            timed_out.set()
            kill()

        timer = threading.Timer(timeout, on_timeout)
        timer.daemon = True
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            kill()
            os.waitpid(proc.pid, 0)
            proc.returncode = -signal.SIGKILL
            raise
        finally:
            timer.cancel()
        elapsed = time.perf_counter() - start
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        if timed_out.is_set() or code not in ok:
            why = (
                f"killed after {timeout:g} s (timeout; raise --timeout)"
                if timed_out.is_set()
                else f"exited with status {code}"
                + (f" (signal {signal.Signals(-code).name})" if code < 0 else "")
            )
            stderr = _tail(err, STDERR_TAIL).rstrip() or "(nothing on stderr)"
            stdout = _tail(out, 1000).rstrip()
            raise ChildFailed(
                f"{label}: {why}\n  command: {' '.join(argv)}\n"
                + (f"  stdout (end): {stdout}\n" if stdout else "")
                + "  stderr:\n"
                + "\n".join(f"    {line}" for line in stderr.splitlines())
            )
        return Child(elapsed, usage.ru_maxrss / 1024, code, _head(out, stdout_limit))


def report_counts(label: str, stdout: str) -> dict[str, int]:
    """The counts of an ``ingest --json`` report.

    A report of at most JSON_LIMIT characters is parsed; a longer one (many rejected rows) is
    cut there, and the counts, which come before the error list, are read from its start.
    """
    try:
        report = json.loads(stdout)
    except json.JSONDecodeError:
        found = dict(re.findall(r'"(\w+)": (\d+)', stdout[:2000]))
        if not all(name in found for name in COUNTS):
            raise ChildFailed(f"{label}: no report on stdout: {stdout[:500]!r}") from None
        return {name: int(found[name]) for name in COUNTS}
    if "error" in report:
        raise ChildFailed(f"{label}: {report['error']}")
    return {name: int(report[name]) for name in COUNTS}


def child_env(home: Path, secret: str, database_url: str | None = None) -> dict[str, str]:
    """This environment without any REINTEGRATION_ or MLFLOW_ setting, then the bench's own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REINTEGRATION_", "MLFLOW_"))}
    env["REINTEGRATION_HOME"] = str(home)
    env["REINTEGRATION_SECRET_KEY"] = secret
    if database_url:
        env["REINTEGRATION_DATABASE_URL"] = database_url
    return env


# -- what the children run (hidden options of this script) --------------------------------------


def make_batch(rows: int, folder: Path) -> None:
    from reintegration.synth import generate_panel, write_panel

    returnees = int(rows / ATTRITION_ROWS_PER_RETURNEE) + 1000
    frame, _ = generate_panel(returnees, 3, seed=7)
    while len(frame) < rows:  # attrition is random: top up rather than guess
        returnees = int(returnees * 1.1)
        frame, _ = generate_panel(returnees, 3, seed=7)
    write_panel(frame.iloc[:rows], folder / "batch.csv", "csv")


def reset_postgres(url: str) -> None:
    from reintegration.store.engine import create_store_engine

    engine = create_store_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA IF EXISTS public CASCADE")
            conn.exec_driver_sql("CREATE SCHEMA public")
    except Exception as exc:  # one line for the parent to show, not a driver traceback
        cause = getattr(exc, "orig", None) or exc
        message = " ".join(str(cause).split())
        print(f"{type(cause).__name__}: {message}", file=sys.stderr)
        raise SystemExit(2) from None
    finally:
        engine.dispose()


def ingest_in_process(batch: Path) -> None:
    """Ingest ``batch`` twice (the second time all duplicates) as the CLI does; print timings."""
    import resource

    def peak_mb() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    start = time.perf_counter()
    from reintegration.cli import current_index
    from reintegration.ingest import ingest_file
    from reintegration.questionnaire import load_questionnaire
    from reintegration.settings import get_settings
    from reintegration.store.engine import open_store

    settings = get_settings()
    engine = open_store(settings.database_url)
    scorer, questionnaire = current_index(), load_questionnaire()
    secret = settings.secret_key_bytes()
    result: dict[str, object] = {
        "setup": time.perf_counter() - start,
        "setup_peak_mb": peak_mb(),
        "runs": [],
    }
    for _ in range(2):
        timings: dict[str, float] = {}
        start = time.perf_counter()
        report = ingest_file(
            batch,
            engine,
            scorer=scorer,
            questionnaire=questionnaire,
            secret=secret,
            uploader="ingest_bench",
            timings=timings,
        )
        run = {"seconds": time.perf_counter() - start, "timings": timings, "peak_mb": peak_mb()}
        run.update({name: getattr(report, name) for name in COUNTS})
        result["runs"].append(run)  # type: ignore[attr-defined]
    engine.dispose()
    print(json.dumps(result))


# -- measurements ----------------------------------------------------------------------------


@dataclass
class StoreResults:
    """What the runs of one store measured; a list per quantity, one entry per repeat."""

    name: str
    ingest: list[float] = field(default_factory=list)
    ingest_mb: list[float] = field(default_factory=list)
    again: list[float] = field(default_factory=list)
    again_mb: list[float] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    again_counts: dict[str, int] = field(default_factory=dict)
    disk_mb: list[float] = field(default_factory=list)
    inproc: list[dict] = field(default_factory=list)  # type: ignore[type-arg]
    failures: int = 0


def folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / MB


class Bench:
    def __init__(self, args: argparse.Namespace, batch: Path, work: Path, rows: int) -> None:
        self.args = args
        self.batch = batch
        self.work = work
        self.rows = rows
        self.secret = secrets.token_hex(32)  # 64 characters
        self.floors: list[float] = []
        self.floor_mb: list[float] = []
        self.stores = {"sqlite": StoreResults("sqlite")}
        if args.postgres:
            self.stores["postgres"] = StoreResults("postgres")
        self.failed = False

    def child(self, label: str, argv: list[str], **kw) -> Child | None:  # type: ignore[no-untyped-def]
        try:
            return run_child(label, argv, timeout=self.args.timeout, **kw)
        except ChildFailed as exc:
            self.failed = True
            print(f"\nFAILED {exc}\n", flush=True)
            return None

    def floor(self) -> str:
        code = f"import pyarrow.csv; pyarrow.csv.read_csv({str(self.batch)!r})"
        done = self.child("parse floor", [sys.executable, "-c", code])
        if done is None:
            return "floor failed"
        self.floors.append(done.seconds)
        self.floor_mb.append(done.peak_mb)
        return f"floor {done.seconds:.2f} s ({done.peak_mb:.0f} MB)"

    def fresh(self, name: str, k: int) -> dict[str, str] | None:
        """The environment of a fresh, empty store of kind ``name``."""
        home = self.work / f"home-{name}-{k}"
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir()
        if name == "sqlite":
            return child_env(home, self.secret)
        env = child_env(home, self.secret, self.args.postgres)
        argv = [sys.executable, __file__, "--reset-postgres", self.args.postgres]
        if self.child("reset PostgreSQL schema", argv, env=env) is None:
            return None
        return env

    def ingest(self, name: str, k: int) -> str:
        results = self.stores[name]
        env = self.fresh(name, k)
        if env is None:
            results.failures += 1
            return f"{name} failed"
        argv = [str(COMMAND), "ingest", str(self.batch), "--json"]
        parts = []
        for again in (False, True):
            label = f"{name} {'re-ingest' if again else 'ingest'}"
            done = self.child(label, argv, env=env, ok=(0, 1))
            try:
                counts = report_counts(label, done.stdout) if done else None
            except ChildFailed as exc:
                self.failed = True
                print(f"\nFAILED {exc}\n", flush=True)
                counts = None
            if done is None or counts is None:
                results.failures += 1
                parts.append(f"{label} failed")
                break
            if again:
                results.again.append(done.seconds)
                results.again_mb.append(done.peak_mb)
                results.again_counts = counts
            else:
                results.ingest.append(done.seconds)
                results.ingest_mb.append(done.peak_mb)
                results.counts = counts
                if name == "sqlite":
                    results.disk_mb.append(folder_mb(Path(env["REINTEGRATION_HOME"])))
            parts.append(f"{label} {done.seconds:.2f} s ({done.peak_mb:.0f} MB)")
        shutil.rmtree(env["REINTEGRATION_HOME"], ignore_errors=True)
        return ", ".join(parts)

    def in_process(self, name: str, k: int) -> str:
        results = self.stores[name]
        env = self.fresh(name, k)
        if env is None:
            results.failures += 1
            return f"{name} timings failed"
        argv = [sys.executable, __file__, "--ingest-in-process", str(self.batch)]
        done = self.child(f"{name} ingest_file with timings", argv, env=env)
        shutil.rmtree(env["REINTEGRATION_HOME"], ignore_errors=True)
        if done is None:
            results.failures += 1
            return f"{name} timings failed"
        try:
            measured = json.loads(done.stdout.strip().splitlines()[-1])
            first = measured["runs"][0]
            prepare, stored = first["timings"]["prepare"], first["timings"]["store"]
        except (json.JSONDecodeError, IndexError, KeyError, TypeError) as exc:
            self.failed = True
            results.failures += 1
            print(
                f"\nFAILED {name} ingest_file with timings: unexpected output "
                f"({type(exc).__name__}: {exc}): {done.stdout[-1000:]!r}\n",
                flush=True,
            )
            return f"{name} timings failed"
        measured["wall"] = done.seconds
        results.inproc.append(measured)
        return f"{name} prepare {prepare:.2f} s + store {stored:.2f} s"

    def run(self) -> None:
        for k in range(self.args.repeats):
            parts = [self.floor()]
            for name in self.stores:
                parts.append(self.ingest(name, k))
            for name in self.stores:
                parts.append(self.in_process(name, k))
            print(f"  run {k + 1}: " + "; ".join(parts), flush=True)

    # -- the summary --

    def summary(self) -> None:
        print()
        if self.floors:
            floor = statistics.median(self.floors)
            print(
                f"parse floor (pyarrow.csv.read_csv, fresh process): median {floor:.2f} s, "
                f"peak {max(self.floor_mb):.0f} MB"
            )
        else:
            floor = None
        for results in self.stores.values():
            self.summarise_store(results, floor)
        self.targets()

    def summarise_store(self, r: StoreResults, floor: float | None) -> None:
        print(f"\n{r.name}:")
        if r.ingest:
            seconds = statistics.median(r.ingest)
            ratio = f", {seconds / floor:.1f}x the parse floor" if floor else ""
            print(
                f"  ingest (whole command, empty store): median {seconds:.2f} s, "
                f"{self.rows / seconds:,.0f} rows/s{ratio}, peak {max(r.ingest_mb):.0f} MB"
            )
            print("  report: " + ", ".join(f"{r.counts[c]:,} {c}" for c in COUNTS))
            if r.counts["received"] != self.rows:
                print(f"  NOTE: received {r.counts['received']:,}, the batch has {self.rows:,}")
            if r.disk_mb:
                print(f"  store on disk after the ingest: {statistics.median(r.disk_mb):.0f} MB")
        if r.again:
            seconds = statistics.median(r.again)
            print(
                f"  re-ingest of the same file (whole command): median {seconds:.2f} s, "
                f"{self.rows / seconds:,.0f} rows/s, peak {max(r.again_mb):.0f} MB"
            )
            print("  report: " + ", ".join(f"{r.again_counts[c]:,} {c}" for c in COUNTS))
        if r.inproc:
            for which, title in ((0, "ingest_file"), (1, "ingest_file again (duplicates)")):
                runs = [m["runs"][which] for m in r.inproc]
                prepare = statistics.median(x["timings"]["prepare"] for x in runs)
                stored = statistics.median(x["timings"]["store"] for x in runs)
                total = statistics.median(x["seconds"] for x in runs)
                rest = total - prepare - stored
                accepted = runs[0]["accepted"]
                rate = (
                    f"storage step {accepted / stored:,.0f} accepted rows/s"
                    if accepted
                    else f"storage step {runs[0]['received'] / stored:,.0f} rows checked/s"
                )
                print(
                    f"  {title}, in-process: {total:.2f} s = prepare {prepare:.2f} s "
                    f"({runs[0]['received'] / prepare:,.0f} rows/s) + store {stored:.2f} s "
                    f"+ other {rest:.2f} s (hash, batch record); {rate}"
                )
            setup = statistics.median(m["setup"] for m in r.inproc)
            outside = statistics.median(
                m["wall"] - m["setup"] - sum(x["seconds"] for x in m["runs"]) for m in r.inproc
            )
            print(
                f"  in-process start-up (imports, open store, fit the index): {setup:.2f} s; "
                f"interpreter start and exit: {outside:.2f} s"
            )
            first = r.inproc[-1]
            print(
                f"  in-process peak resident memory: {first['setup_peak_mb']:.0f} MB after "
                f"start-up, {first['runs'][0]['peak_mb']:.0f} MB after the ingest"
            )
        if r.failures:
            print(f"  {r.failures} measurement(s) failed: see above")

    def targets(self) -> None:
        print("\ntargets (issue):")
        million = 1_000_000
        sqlite = self.stores["sqlite"]
        if sqlite.ingest:
            seconds = statistics.median(sqlite.ingest)
            if self.rows == million:
                shown, note = seconds, ""
            else:
                # Start-up (imports, migrations, fitting the index) does not grow with the
                # batch: keep it fixed and scale the rest. Without a start-up figure, scale all.
                setups = [m["setup"] for m in sqlite.inproc]
                fixed = min(seconds, statistics.median(setups)) if setups else 0.0
                shown = fixed + (seconds - fixed) * million / self.rows
                note = (
                    f" (extrapolated from {seconds:.1f} s at {self.rows:,} rows: start-up "
                    f"{fixed:.1f} s kept, the rest scaled linearly; measure with --rows 1000000)"
                )
            print(
                f"  [{_verdict(shown < TARGET_SECONDS_PER_MILLION)}] 1M rows end to end into "
                f"SQLite < {TARGET_SECONDS_PER_MILLION:.0f} s: {shown:.1f} s{note}"
            )
        else:
            print("  [ -- ] 1M rows end to end into SQLite: not measured (failed)")
        for r in self.stores.values():
            target = TARGET_STORE_RATE[r.name]
            if r.inproc:
                rate = statistics.median(
                    m["runs"][0]["accepted"] / m["runs"][0]["timings"]["store"] for m in r.inproc
                )
                print(
                    f"  [{_verdict(rate >= target)}] storage step on {r.name} >= {target:,} "
                    f"rows/s: {rate:,.0f} rows/s"
                )
            else:
                print(f"  [ -- ] storage step on {r.name}: not measured (failed)")
        for r in self.stores.values():
            peaks = r.ingest_mb + r.again_mb
            if peaks:
                note = "" if self.rows >= million else f" (at {self.rows:,} rows; target at 1M)"
                print(
                    f"  [{_verdict(max(peaks) < TARGET_PEAK_MB)}] peak memory of ingest on "
                    f"{r.name} < {TARGET_PEAK_MB} MB: {max(peaks):.0f} MB{note}"
                )


def _verdict(met: bool) -> str:
    return " met" if met else "MISS"


# -- main ------------------------------------------------------------------------------------


def generate(rows: int, folder: Path, timeout: float) -> Path | None:
    print(f"generating {rows:,} rows …", flush=True)
    argv = [sys.executable, __file__, "--rows", str(rows), "--generate-into", str(folder)]
    start = time.perf_counter()
    try:
        run_child("generate the batch", argv, timeout=timeout)
    except ChildFailed as exc:
        print(f"\nFAILED {exc}\n", flush=True)
        return None
    batch = folder / "batch.csv"
    print(
        f"batch: {batch.stat().st_size / MB:.0f} MB, {rows:,} rows "
        f"(generated in {time.perf_counter() - start:.0f} s)",
        flush=True,
    )
    return batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rows", type=int, action="append", help="batch size; repeat for several (default 1M)"
    )
    parser.add_argument("--postgres", metavar="URL", help="also measure this PostgreSQL database")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per child")
    parser.add_argument("--generate-into", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--reset-postgres", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--ingest-in-process", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = args.rows or [1_000_000]
    if args.generate_into:
        make_batch(sizes[0], args.generate_into)
        return
    if args.reset_postgres:
        reset_postgres(args.reset_postgres)
        return
    if args.ingest_in_process:
        ingest_in_process(args.ingest_in_process)
        return
    if args.repeats < 1 or any(n < 1 for n in sizes):
        parser.error("--rows and --repeats must be at least 1")
    if not COMMAND.exists():
        parser.error(f"{COMMAND} not found: run this with the project's .venv/bin/python")

    if args.postgres:  # fail once, early, rather than in every run
        argv = [sys.executable, __file__, "--reset-postgres", args.postgres]
        try:
            run_child("reset PostgreSQL schema", argv, timeout=args.timeout)
        except ChildFailed as exc:
            last = str(exc).strip().splitlines()[-1].strip()
            raise SystemExit(f"cannot use --postgres {args.postgres}: {last}") from None

    failed = False
    with tempfile.TemporaryDirectory(prefix="ingest_bench_") as tmp:
        for rows in sizes:
            print(f"\n=== {rows:,} rows ===", flush=True)
            folder = Path(tmp) / str(rows)
            folder.mkdir()
            batch = generate(rows, folder, args.timeout)
            if batch is None:
                failed = True
                continue
            bench = Bench(args, batch, folder, rows)
            bench.run()
            bench.summary()
            failed = failed or bench.failed
            shutil.rmtree(folder, ignore_errors=True)
    if failed:
        raise SystemExit("\nsome measurements failed: see FAILED above")


if __name__ == "__main__":
    main()
