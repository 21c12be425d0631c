"""Benchmark the aggregate queries of ``reintegration.analytics`` against plain SQL, in one run.

    .venv/bin/python benchmarks/aggregates_bench.py --store sqlite:////tmp/x/var/reintegration.db

The store must already hold scores (``reintegration synth`` then ``reintegration ingest``; a
million interviews take about 75 s to ingest). Measured, with the median of ``--repeats``:

1. *baseline*: the group-by a plain implementation would send to the database: scores of each
   returnee's latest scored submission, by sex, age group and return type, in one SQL query.
2. *cold*: the first answer of a new :class:`~reintegration.analytics.Analytics` (loads the
   in-memory frame of the current index version, then answers).
3. *new filter*: an answer for filters not asked before (the frame is loaded; no cached answer).
4. *cached*: the same answer again (one read of the data version, then the cache).

Prints each time and its ratio to the baseline.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import date

import sqlalchemy as sa

from reintegration.analytics import Analytics, Filters
from reintegration.store.engine import create_store_engine, for_reading

LABEL = "rss-v1-provisional"
BY = ["sex", "age_group", "return_type"]

BASELINE = """
WITH ranked AS (
  SELECT s.returnee_key, sc.composite, sc.economic, sc.social, sc.psychosocial, sc.sustainable,
         ROW_NUMBER() OVER (PARTITION BY s.returnee_key ORDER BY s.interview_date DESC) AS k
  FROM submission s JOIN score sc ON sc.submission_pk = s.id AND sc.index_version = :label
  WHERE s.current AND sc.composite IS NOT NULL
)
SELECT r.sex, CASE WHEN r.age_at_return < 18 THEN 'child' ELSE 'adult' END AS age_group,
       r.return_type, COUNT(*), AVG(composite), AVG(economic), AVG(social), AVG(psychosocial),
       AVG(CASE WHEN sustainable THEN 1.0 ELSE 0.0 END)
FROM ranked JOIN returnee r ON r.key = ranked.returnee_key
WHERE k = 1
GROUP BY 1, 2, 3
"""


def _median_seconds(action, repeats: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", required=True, help="the app's database URL")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    engine = create_store_engine(args.store)
    reader = for_reading(engine)
    with reader.connect() as conn:
        rows = conn.execute(sa.text("SELECT COUNT(*) FROM score")).scalar_one()

    def baseline() -> None:
        with reader.connect() as conn:
            conn.execute(sa.text(BASELINE), {"label": LABEL}).fetchall()

    base = _median_seconds(baseline, args.repeats)

    def cold() -> None:
        Analytics(engine).aggregates(BY, Filters(), LABEL)

    cold_s = _median_seconds(cold, max(1, args.repeats // 2))
    analytics = Analytics(engine)
    analytics.aggregates(BY, Filters(), LABEL)
    filters = iter(
        Filters(date_to=date(2025, 1, 1) + (date(2026, 6, 1) - date(2025, 1, 1)) * k // 100)
        for k in range(1, 1000)
    )
    fresh_s = _median_seconds(lambda: analytics.aggregates(BY, next(filters), LABEL), args.repeats)
    cached_s = _median_seconds(lambda: analytics.aggregates(BY, Filters(), LABEL), 50)
    print(f"{rows:,} stored scores; group-by {', '.join(BY)}; median of {args.repeats}")
    print(f"baseline (one SQL query)      {base * 1000:9.1f} ms")
    for name, value in (
        ("cold (load frame + answer)", cold_s),
        ("new filter (frame loaded)", fresh_s),
        ("cached answer", cached_s),
    ):
        print(f"{name:<29} {value * 1000:9.1f} ms   {value / base:8.3f}x baseline")
    engine.dispose()


if __name__ == "__main__":
    main()
