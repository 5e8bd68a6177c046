"""`python -m hub bench`: measure the hub against the naive approach, in the same run.

The harness builds (or reuses) one benchmark store, runs the registered jobs and prints
ONE table: each figure beside the bare or naive way of doing the same thing, measured
in the same run on the same machine, their ratio, the goal and whether it is met.
Figures are never asserted in tests; the ratio is what travels between machines.

Jobs live in `bench/*.py` and register themselves::

    from hub.bench import BenchContext, Result, register

    @register("my_job")
    def my_job(ctx: BenchContext) -> list[Result]:
        ...

A job that raises is reported as an ``error`` row; the others still run.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine

from hub.settings import DATA_DIR, ROOT, load_settings

BENCH_DIR = DATA_DIR / "bench"
RESULTS_PATH = ROOT / "bench" / "results.json"
# Fixed seed and anchor: the cached store is the same whenever and wherever it is built.
BENCH_SEED = 7
BENCH_ANCHOR = datetime(2026, 11, 1, tzinfo=UTC)
HEADER = ("job", "figure", "value", "naive (same run)", "ratio", "goal", "met", "note")


def log(message: str) -> None:
    """Progress for the person watching: stderr, so stdout holds only the table."""
    print(message, file=sys.stderr, flush=True)


@dataclass
class Result:
    """One row of the table.

    `ratio` is always "times better than naive": value/naive for rates (higher is
    better), naive/value for latencies (`higher_is_better=False`).
    """

    job: str
    figure: str
    value: float | None = None
    unit: str = ""
    naive: str = ""  # what the baseline is, short
    naive_value: float | None = None
    goal: float | None = None
    higher_is_better: bool = True
    note: str = ""
    error: str | None = None
    detail: dict = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.value is None or self.naive_value is None or not self.value or not self.naive_value:
            return None
        return (
            self.value / self.naive_value
            if self.higher_is_better
            else self.naive_value / self.value
        )

    @property
    def met(self) -> str:
        if self.error is not None:
            return "error"
        if self.goal is None or self.value is None:
            return "-"
        ok = self.value >= self.goal if self.higher_is_better else self.value <= self.goal
        return "yes" if ok else "no"

    def as_dict(self) -> dict:
        return {**asdict(self), "ratio": self.ratio, "met": self.met}


@dataclass
class BuildInfo:
    """How long seeding the benchmark store took, when this run did it."""

    size: str
    rows: int
    seconds: float
    per_table: dict[str, int]


@dataclass
class BenchContext:
    """What a job gets: the benchmark store and where to put scratch files."""

    engine: Engine | None
    backend: str
    size: str
    tmp_dir: Path
    built: BuildInfo | None = None
    seed: int = BENCH_SEED
    anchor: datetime = BENCH_ANCHOR
    db: str | None = None  # --db as given (storeless jobs may make scratch databases there)

    @property
    def store(self) -> Engine:
        if self.engine is None:
            raise RuntimeError(
                "this job needs the benchmark store; register it with needs_store=True"
            )
        return self.engine


Job = Callable[[BenchContext], list[Result]]
JOBS: dict[str, Job] = {}
STORELESS: set[str] = set()  # jobs that run without the benchmark store


def register(name: str, *, needs_store: bool = True) -> Callable[[Job], Job]:
    """Decorator adding a job to `JOBS` under `name` (re-registering replaces it)."""

    def deco(fn: Job) -> Job:
        JOBS[name] = fn
        if needs_store:
            STORELESS.discard(name)
        else:
            STORELESS.add(name)
        return fn

    return deco


# --- discovery --------------------------------------------------------------------------

_import_errors: dict[str, str] = {}


def _point_assignment(ctx: BenchContext) -> list[Result]:
    """Adapter for `bench.geo_bench.point_assignment`, which returns a plain dict."""
    from bench.geo_bench import point_assignment

    n = 200_000 if ctx.size == "small" else 2_000_000
    log(f"point_assignment: {n:,} points, PointAssigner vs geopandas.sjoin")
    r = point_assignment(n=n, seed=0)
    return [
        Result(
            job="point_assignment",
            figure=f"PointAssigner.assign, {n:,} points",
            value=r["rate"],
            unit="points/s",
            naive="geopandas.sjoin 'within'",
            naive_value=r["naive_rate"],
            goal=2_000_000,
            note=f"agree {r['agree']:.2%} with naive",
            detail={k: v for k, v in r.items() if k not in ("rate", "naive_rate")},
        )
    ]


def load_jobs() -> dict[str, Job]:
    """Import every module of the `bench` package so that its jobs register."""
    import bench

    for mod in sorted(pkgutil.iter_modules(bench.__path__), key=lambda m: m.name != "store_bench"):
        name = f"bench.{mod.name}"
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - a broken bench module must not stop the others
            _import_errors[name] = f"{type(exc).__name__}: {exc}"
    if "point_assignment" not in JOBS:
        register("point_assignment", needs_store=False)(_point_assignment)
    return JOBS


# --- the benchmark store ----------------------------------------------------------------


def _prepare_schema(engine: Engine) -> None:
    from hub.reference import load_reference
    from hub.store import current_revision, head_revision, transaction, upgrade

    if current_revision(engine) != head_revision():
        upgrade(engine)
        with transaction(engine) as session:
            load_reference(session=session)


def _seed(engine: Engine, size: str) -> BuildInfo:
    from hub import demo

    log(
        f"seeding the benchmark store: size {size}, seed {BENCH_SEED}, anchor {BENCH_ANCHOR:%Y-%m-%dT%H:%MZ}"
    )
    started = time.perf_counter()
    with demo.progress_bar() as progress:
        written = demo.seed(
            engine,
            load_settings(),
            size=size,
            seed=BENCH_SEED,
            anchor=BENCH_ANCHOR,
            progress=progress,
        )
    seconds = time.perf_counter() - started
    return BuildInfo(size=size, rows=sum(written.values()), seconds=seconds, per_table=written)


def open_store(db: str | None, size: str) -> tuple[Engine, BuildInfo | None]:
    """The benchmark store: `db` as given, or the cached SQLite file of `size`.

    A store without records is seeded with the demo province. The cached file is built
    under a temporary name and renamed when complete, so an interrupted build is never
    mistaken for a finished one.

    Raises
    ------
    StoreError
        The database cannot be reached.
    """
    from hub.demo import record_count
    from hub.store import make_engine

    if db:
        engine = make_engine(db)
        _prepare_schema(engine)
        built = None if record_count(engine) else _seed(engine, size)
        return engine, built

    final = BENCH_DIR / f"{size}.db"
    if final.exists():
        engine = make_engine(f"sqlite:///{final}")
        _prepare_schema(engine)
        if record_count(engine):
            return engine, None
        engine.dispose()
    building = BENCH_DIR / f"{size}.db.building"
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{building}{suffix}").unlink(missing_ok=True)
    engine = make_engine(f"sqlite:///{building}")
    _prepare_schema(engine)
    built = _seed(engine, size)
    engine.dispose()  # checkpoints and removes the WAL before the rename
    os.replace(building, final)
    return make_engine(f"sqlite:///{final}"), built


# --- reporting --------------------------------------------------------------------------


def _num(value: float | None, unit: str) -> str:
    if value is None:
        return ""
    if unit == "ms":
        text = f"{value:#.3g}" if value < 100 else f"{value:,.0f}"
    elif abs(value) >= 100:
        text = f"{value:,.0f}"
    else:
        text = f"{value:#.3g}"
    return f"{text} {unit}".strip()


def _cells(r: Result) -> tuple[str, ...]:
    if r.error is not None:
        message = r.error if len(r.error) <= 120 else r.error[:117] + "..."
        return (r.job, r.figure, "", "", "", "", "error", message)
    naive = f"{_num(r.naive_value, r.unit)} ({r.naive})" if r.naive_value is not None else r.naive
    ratio = f"{r.ratio:,.1f}x" if r.ratio is not None else ""
    goal = ""
    if r.goal is not None:
        goal = ("≥ " if r.higher_is_better else "≤ ") + _num(r.goal, r.unit)
    return (r.job, r.figure, _num(r.value, r.unit), naive, ratio, goal, r.met, r.note)


def format_table(results: list[Result]) -> str:
    rows = [HEADER, *(_cells(r) for r in results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _metadata(engine: Engine | None, backend: str, size: str, db: str | None) -> dict:
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "backend": backend,
        "database": engine.url.render_as_string(hide_password=True) if engine is not None else db,
        "size": size,
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


# --- the run ----------------------------------------------------------------------------


def run_job(name: str, job: Job, ctx: BenchContext) -> list[Result]:
    """Run one job; an exception becomes one `error` row (traceback on stderr)."""
    log(f"== {name}")
    started = time.perf_counter()
    try:
        results = list(job(ctx))
    except Exception as exc:  # noqa: BLE001 - reported in its row, the other jobs still run
        traceback.print_exc(file=sys.stderr)
        return [Result(job=name, figure="(job failed)", error=f"{type(exc).__name__}: {exc}")]
    log(f"   {name} done in {time.perf_counter() - started:.1f} s")
    return results


def run_bench(
    db: str | None = None,
    only: str | None = None,
    size: str = "province",
    results_path: Path | str | None = None,
) -> int:
    """Run the selected jobs, print the table, write the JSON results; the exit code.

    Parameters
    ----------
    db
        Database URL of the benchmark store; default: the cached SQLite file
        `data/bench/<size>.db`, built on first use.
    only
        Run only the jobs whose name contains this substring.
    size
        Demo size the store is seeded with when it has no records.
    results_path
        Where to write the JSON results (default `bench/results.json`).

    Raises
    ------
    StoreError
        The store cannot be reached (the CLI turns it into one line).
    """
    from hub.store import parse_url

    jobs = load_jobs()
    selected = {n: j for n, j in jobs.items() if only is None or only in n}
    broken = {n: e for n, e in _import_errors.items() if only is None or only in n}
    if not selected and not broken:
        log(f"error: no benchmark job matches {only!r}; jobs: {', '.join(jobs)}")
        return 1

    engine: Engine | None = None
    built: BuildInfo | None = None
    backend = parse_url(db).get_backend_name() if db else "sqlite"
    if any(n not in STORELESS for n in selected):
        engine, built = open_store(db, size)
        backend = engine.dialect.name
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp:
        ctx = BenchContext(
            engine=engine, backend=backend, size=size, tmp_dir=Path(tmp), built=built, db=db
        )
        for module, error in broken.items():
            results.append(Result(job=module, figure="(import failed)", error=error))
        try:
            for name, job in selected.items():
                results.extend(run_job(name, job, ctx))
        finally:
            if engine is not None:
                engine.dispose()

    print(format_table(results))
    path = Path(results_path) if results_path is not None else RESULTS_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {**_metadata(engine, backend, size, db), "rows": [r.as_dict() for r in results]}
    path.write_text(
        json.dumps(payload, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8"
    )
    log(f"results written to {path}")
    return 0
