"""Cost of resource versioning on the bulk write path (issue 15 part 2): ``add_many`` of synthetic charts
in chunks of 500 into a fresh SQLite file (or ``sys.argv[1]``, a database URL), then 200 ``get_chart``.

    .venv/bin/python benchmarks/chart_versions.py [DATABASE_URL]

Run it against an older tree with ``PYTHONPATH=<tree>/src`` for the before figure.
"""

from __future__ import annotations

import sys
import tempfile
import time

from medfusion.store.database import Database
from medfusion.store.patients import PatientRepository
from medfusion.synth import generate_population

SIZE = 2000


def main() -> None:
    charts = list(generate_population(SIZE, seed=3))
    url = sys.argv[1] if len(sys.argv) > 1 else f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    db = Database(url)
    db.upgrade()
    resources = sum(1 + sum(len(v) for v in c.children().values()) for c in charts)
    started = time.perf_counter()
    for i in range(0, len(charts), 500):
        with db.session() as session:
            PatientRepository(session).add_many(charts[i : i + 500])
    seconds = time.perf_counter() - started
    print(f"add_many {SIZE} charts ({resources} resources): {seconds:.2f}s, {SIZE / seconds:.0f} charts/s")
    started = time.perf_counter()
    with db.session() as session:
        repo = PatientRepository(session)
        for chart in charts[:200]:
            repo.get_chart(chart.patient.id)
    print(f"get_chart: {(time.perf_counter() - started) * 1000 / 200:.2f} ms each")
    db.dispose()


if __name__ == "__main__":
    main()
