"""The concealed list: generated from a secure seed, exported so that it can be derived again
exactly, imported all-or-nothing."""
import csv
import hashlib
import io
import json
import random

from sqlalchemy import func, select

from audit import audit_event
from ecrf.models import AllocationList, AllocationSlot
from ecrf.randomization import service


def _count(db, model):
    return db.scalar(select(func.count()).select_from(model))


def _events(db):
    return db.scalar(select(func.count()).select_from(audit_event))


def rederive(header, size):
    """The published derivation (docs/study-definitions.md), written again without ecrf's code."""
    params = json.loads(header["parameters"])
    arms = list(params["ratio"])
    total = sum(params["ratio"].values())
    rows, number = [], 0
    for stratum in params["strata"]:
        digest = hashlib.sha256(f"{header['seed']}:{stratum}".encode()).digest()
        rng = random.Random(int.from_bytes(digest, "big"))
        cells, block = [], 0
        while len(cells) < size:
            length = (rng.choice(params["block_sizes"]) if params["block_order"] == "random"
                      else params["block_sizes"][block % len(params["block_sizes"])])
            block += 1
            arms_of_block = [a for a in arms for _ in range(params["ratio"][a] * length // total)]
            rng.shuffle(arms_of_block)
            cells += [(a, block) for a in arms_of_block]
        for position, (arm, blk) in enumerate(cells, 1):
            number += 1
            rows.append([str(number), stratum, str(position), str(blk), arm, ""])
    return rows


def test_generate_prints_no_arm_and_stores_a_concealed_list(rz_study, cli, db):
    sid = rz_study()
    result = cli("randomization", "generate", "--study", sid, "--size", "20")
    assert result.exit_code == 0, result.output
    assert "aardvark" not in result.output and "zebu" not in result.output
    assert "concealed slots over 4 stratum" in result.output
    the_list = db.scalar(select(AllocationList))
    assert len(the_list.seed) == 64 and the_list.source == "generated"
    # Every stratum: whole blocks, balanced 1:1, at least 20 slots.
    for stratum in the_list.parameters["strata"]:
        arms = list(db.scalars(select(AllocationSlot.arm).where(AllocationSlot.stratum == stratum)))
        assert len(arms) >= 20 and arms.count("aardvark") == arms.count("zebu")
    again = cli("randomization", "generate", "--study", sid)
    assert again.exit_code == 1 and "already has an allocation list" in again.output


def test_two_lists_differ_because_the_seed_is_fresh(rz_study, db, actor):
    first, second = rz_study(study_id="one"), rz_study(study_id="two")
    a, _ = service.generate_list(db, actor, first, 50)
    b, _ = service.generate_list(db, actor, second, 50)
    assert a.seed != b.seed


def test_the_export_is_audited_and_rederives_exactly(rz_study, cli, db, tmp_path):
    sid = rz_study(block_order="in_turn", block_sizes=[4, 2, 6])
    cli("randomization", "generate", "--study", sid, "--size", "15")
    before = _events(db)
    out = tmp_path / "list.csv"
    result = cli("randomization", "export", "--study", sid, "-o", str(out))
    assert result.exit_code == 0, result.output
    assert _events(db) == before + 1
    header, rows, _ = service.read_csv(out.read_text())
    body = [line for line in out.read_text().splitlines() if not line.startswith("#")]
    exported = list(csv.reader(io.StringIO("\n".join(body))))[1:]
    assert exported == rederive(header, 15)
    assert len(rows) == len(exported)


def test_random_block_order_rederives_too(rz_study, db, actor):
    sid = rz_study(stratify_by=("site",), block_sizes=[2, 4, 6])
    service.generate_list(db, actor, sid, 30)
    out = io.StringIO()
    service.export_list(db, actor, sid, out)
    header, _, _ = service.read_csv(out.getvalue())
    body = [line for line in out.getvalue().splitlines() if not line.startswith("#")]
    assert list(csv.reader(io.StringIO("\n".join(body))))[1:] == rederive(header, 30)
    sizes = {int(r[3]) for r in rederive(header, 30)}
    assert len(sizes) > 3  # several blocks per stratum


IMPORT_HEADER = "randomization_number,stratum,position,arm,kit\n"


def test_import_loads_a_list_made_elsewhere(rz_study, cli, db, tmp_path):
    sid = rz_study(stratify_by=("site",))
    file = tmp_path / "list.csv"
    file.write_text(IMPORT_HEADER + "1,site=01,1,aardvark,K-1\n2,site=01,2,zebu,K-2\n3,site=02,1,zebu,\n")
    result = cli("randomization", "import", "--study", sid, str(file))
    assert result.exit_code == 0, result.output
    slots = {s.randomization_number: (s.arm, s.kit) for s in db.scalars(select(AllocationSlot))}
    assert slots == {1: ("aardvark", "K-1"), 2: ("zebu", "K-2"), 3: ("zebu", None)}
    assert db.scalar(select(AllocationList)).seed is None


def test_import_is_refused_whole(rz_study, cli, db, tmp_path):
    sid = rz_study(stratify_by=("site",))
    file = tmp_path / "list.csv"
    file.write_text(IMPORT_HEADER + "1,site=01,1,aardvark,\n2,site=01,2,lion,\n2,site=03,1,zebu,\n"
                    "x,site=02,1,zebu,\n")
    before = (_count(db, AllocationList), _count(db, AllocationSlot), _events(db))
    result = cli("randomization", "import", "--study", sid, str(file))
    assert result.exit_code == 1
    assert "line 3: unknown arm 'lion'" in result.output
    assert "line 4: duplicate randomization number 2" in result.output
    assert "line 4: unknown stratum 'site=03'" in result.output
    assert "line 5: randomization_number is not a positive whole number" in result.output
    assert (_count(db, AllocationList), _count(db, AllocationSlot), _events(db)) == before


def test_the_cli_commands_are_in_the_permission_table(rz_study, cli, tmp_path):
    sid = rz_study(method="minimization")
    result = cli("randomization", "generate", "--study", sid)
    assert result.exit_code == 0 and "minimization seed stored" in result.output
    file = tmp_path / "l.csv"
    file.write_text(IMPORT_HEADER + "1,,1,zebu,\n")
    refused = cli("randomization", "import", "--study", sid, str(file))
    assert refused.exit_code == 1 and "minimization allocates without a list" in refused.output
