"""Benchmark: randomization under contention, list generation, and minimization's balance.

    .venv/bin/python bench/randomization.py [--backend postgresql|sqlite] [--processes 8]
                                            [--subjects 400] [--trials 1000]

Prints, for one run on this machine:

* allocations per second with ``--processes`` processes randomizing at once through
  ``randomization.service.randomize`` (each allocation its own committed transaction, all subjects
  in one stratum so every process competes for the same next slot), and the number of duplicate
  slots and randomization numbers afterwards (must be 0). PostgreSQL comes from
  ``ECRF_BENCH_POSTGRES_URL`` or ``ECRF_TEST_POSTGRES_URL`` (a scratch database is created and
  dropped);
* the time to derive a list of 10,000 slots over 12 strata (site × sex × smoker), and to generate
  and store it with ``generate_list``;
* a simulation of ``--trials`` trials of 100 subjects with three factors (3 sites, sex, smoker,
  levels drawn uniformly): mean and worst imbalance per factor (the largest |A − B| over the
  factor's levels, and |A − B| overall) for minimization (range, p = 0.8), permuted blocks
  stratified by all three factors (blocks of 2 and 4), and simple randomization.

Nothing here is part of the test run.
"""
import argparse
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "randomization"))


def _worker(url, keys, start, done):
    from audit import RequestContext
    from ecrf.actor import Actor
    from ecrf.db import make_engine, make_session_factory
    from ecrf.randomization.service import randomize

    engine = make_engine(url)
    sessions = make_session_factory(engine)
    actor = Actor(None, "bench", "investigator", RequestContext(channel="system"))
    start.wait(120)
    for key in keys:
        with sessions() as session:
            randomize(session, actor, "rz", key)
    done.put(time.perf_counter())
    engine.dispose()


def contention(backend, processes, subjects, folder):
    from sqlalchemy import func, select

    from conftest import study_document, write_rz_study
    from ecrf import migrate
    from ecrf.actor import Actor
    from ecrf.capture.service import enrol_subject, save_form
    from ecrf.db import make_engine, make_session_factory
    from ecrf.definitions import load_study
    from ecrf.definitions.publish import publish_study
    from ecrf.models import Allocation
    from ecrf.randomization.service import generate_list
    from ecrf.scratch import scratch_database

    admin = os.environ.get("ECRF_BENCH_POSTGRES_URL") or os.environ.get("ECRF_TEST_POSTGRES_URL")
    if backend == "postgresql" and not admin:
        print("contention: set ECRF_BENCH_POSTGRES_URL (or ECRF_TEST_POSTGRES_URL) for PostgreSQL")
        return
    with scratch_database(backend, folder, admin, prefix="ecrf_bench") as url:
        engine = make_engine(url)
        migrate.upgrade(engine)
        sessions = make_session_factory(engine)
        actor = Actor.cli()
        keys = []
        with sessions() as session:
            document = study_document(stratify_by=("site",))
            publish_study(session, actor, load_study(write_rz_study(Path(folder) / "study", document)))
            generate_list(session, actor, "rz", subjects)
            for _ in range(subjects):
                subject = enrol_subject(session, actor, "rz", "01")
                save_form(session, actor, "rz", subject.key, "screening", "elig", {"inc_ok": True},
                          complete=True)
                keys.append(subject.key)
        context = multiprocessing.get_context("spawn")
        start, done = context.Event(), context.Queue()
        workers = [context.Process(target=_worker, args=(url, keys[n::processes], start, done))
                   for n in range(processes)]
        for process in workers:
            process.start()
        time.sleep(3)  # let every process import and connect before the start
        began = time.perf_counter()
        start.set()
        ends = [done.get(timeout=600) for _ in workers]
        for process in workers:
            process.join(60)
        seconds = max(ends) - began
        with sessions() as session:
            count = session.scalar(select(func.count()).select_from(Allocation))
            slots = session.scalar(select(func.count(func.distinct(Allocation.slot_id))))
            numbers = session.scalar(select(func.count(func.distinct(Allocation.randomization_number))))
        engine.dispose()
    print(f"contention ({backend}, {processes} processes, one stratum): {count} allocations in "
          f"{seconds:.2f} s = {count / seconds:.0f} allocations/s; duplicate slots {count - slots}, "
          f"duplicate numbers {count - numbers}")


def generation(folder):
    from conftest import study_document, write_rz_study
    from ecrf import migrate
    from ecrf.actor import Actor
    from ecrf.db import make_engine, make_session_factory
    from ecrf.definitions import load_study
    from ecrf.definitions.publish import publish_study
    from ecrf.randomization.design import design_of, strata
    from ecrf.randomization.lists import derive_slots, new_seed
    from ecrf.randomization.service import generate_list
    from ecrf.scratch import scratch_database

    document = study_document(study_id="gen", stratify_by=("site", "elig.sex", "elig.smoker"))
    document["sites"].append({"id": "03", "name": "Site three", "timezone": "UTC"})
    spec = load_study(write_rz_study(Path(folder) / "gen", document))
    design = design_of(spec)
    all_strata = strata(spec, design, ["01", "02", "03"])
    size = -(-10_000 // len(all_strata))
    began = time.perf_counter()
    slots = derive_slots(new_seed(), design, all_strata, size)
    derived = time.perf_counter() - began
    with scratch_database("sqlite", folder, prefix="ecrf_bench") as url:
        engine = make_engine(url)
        migrate.upgrade(engine)
        with make_session_factory(engine)() as session:
            publish_study(session, Actor.cli(), spec)
            began = time.perf_counter()
            _, stored = generate_list(session, Actor.cli(), "gen", size)
            generated = time.perf_counter() - began
        engine.dispose()
    print(f"list of {len(slots)} slots over {len(all_strata)} strata: derived in {derived * 1000:.0f} ms; "
          f"generated and stored (SQLite) in {generated * 1000:.0f} ms ({stored} slots)")


def simulate(trials, per_trial=100, seed=20261202):
    from ecrf.randomization import minimization
    from ecrf.randomization.design import Design
    from ecrf.randomization.lists import _stratum_arms

    factors = ("site", "sex", "smoker")
    levels = {"site": ["01", "02", "03"], "sex": ["F", "M"], "smoker": ["false", "true"]}
    ratio = (("a", 1), ("b", 1))
    mini = Design("minimization", ratio, (), "random", factors, None, "range", 0.8)
    blocks = Design("permuted_blocks", ratio, (2, 4), "random", factors, None)
    rng = random.Random(seed)
    results = {name: {f: [] for f in (*factors, "overall")} for name in ("minimization", "blocks", "simple")}
    for trial in range(trials):
        people = [{f: rng.choice(levels[f]) for f in factors} for _ in range(per_trial)]
        trial_seed = f"{seed}-{trial}"
        arms = {"minimization": [], "blocks": [], "simple": []}
        counts = {}
        for n, person in enumerate(people, 1):
            arm, _ = minimization.choose_arm(mini, counts, person, minimization.decision_rng(trial_seed, n))
            minimization.add_count(counts, person, arm)
            arms["minimization"].append(arm)
        queues = {}
        for person in people:
            stratum = "; ".join(person[f] for f in factors)
            if stratum not in queues:
                queues[stratum] = iter(_stratum_arms(random.Random(f"{trial_seed}:{stratum}"), blocks, per_trial))
            arms["blocks"].append(next(queues[stratum])[0])
        arms["simple"] = [rng.choice("ab") for _ in people]
        for name, allocated in arms.items():
            for factor in factors:
                worst = 0
                for level in levels[factor]:
                    got = [a for p, a in zip(people, allocated, strict=True) if p[factor] == level]
                    worst = max(worst, abs(got.count("a") - got.count("b")))
                results[name][factor].append(worst)
            results[name]["overall"].append(abs(allocated.count("a") - allocated.count("b")))
    print(f"balance over {trials} trials of {per_trial} subjects (largest |A-B| within a factor's levels; "
          "mean / worst):")
    for name, per_factor in results.items():
        cells = ", ".join(f"{f} {statistics.mean(v):.2f}/{max(v)}" for f, v in per_factor.items())
        print(f"  {name:13} {cells}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--subjects", type=int, default=400)
    parser.add_argument("--trials", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        contention(args.backend, args.processes, args.subjects, folder)
        generation(folder)
    simulate(args.trials)


if __name__ == "__main__":
    main()
