"""Fuzz the JSON API with schemathesis at full size, on a fresh database of each backend.

    .venv/bin/python bench/fuzz_api.py [--examples 200] [--seed N] [--backend sqlite|postgresql]

Prints, per backend: operations, requests, failures (and each distinct failure). Exit 1 when any
check failed. PostgreSQL: ECRF_TEST_POSTGRES_URL or the local server (see ecrf/scratch.py).
"""
import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("ECRF_ARGON2_TIME_COST", "1")
os.environ.setdefault("ECRF_ARGON2_MEMORY_KIB", "1024")

from ecrf import apifuzz, create_app, migrate  # noqa: E402
from ecrf.actor import Actor  # noqa: E402
from ecrf.db import get_session, make_engine  # noqa: E402
from ecrf.scratch import scratch_database  # noqa: E402


def fuzz(backend, examples, seed):
    with scratch_database(backend, prefix="ecrf_fuzz") as url:
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        app = create_app({"ECRF_ENV": "testing", "SECRET_KEY": "fuzz", "DATABASE_URL": url,
                          "INSTANCE_PATH": "/nonexistent-instance"})
        with app.app_context():
            target = apifuzz.seed(get_session(), Actor.cli())
        started = time.perf_counter()
        result = apifuzz.run(app, target, max_examples=examples, seed=seed)
        seconds = time.perf_counter() - started
    print(f"{backend}: operations {result.operations}, requests {result.requests}, "
          f"failures {len(result.failures)} ({seconds:.0f} s, {examples} examples per operation, "
          f"seed {'derandomized' if seed is None else seed})")
    for line in sorted(set(result.failures)):
        print(f"  {line}")
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), action="append")
    args = parser.parse_args()
    failed = False
    for backend in args.backend or ("sqlite", "postgresql"):
        failed |= bool(fuzz(backend, args.examples, args.seed).failures)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
