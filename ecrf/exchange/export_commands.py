"""``ecrf export csv|odm|dataset-json|stats``: the export service at the command line.

The operator exports (``permissions.CLI_COMMANDS``): every site, and arms only in an open-label study
or with ``--unblinded`` (which the manifest and the audit event record). A progress bar shows on a
terminal, plain progress lines otherwise.
"""
import contextlib
import sys

import click

from ecrf.cli import main, pass_ctx, user_errors

#: Plain progress lines (not on a terminal): one per this many records.
PROGRESS_EVERY = 10_000


@main.group("export")
def export_group():
    """Analysis-ready exports of a study's data (CSV, ODM 1.3.2, Dataset-JSON 1.1, Stata/SPSS/SAS)."""


def _scope_options(command):
    for decorator in reversed([
        click.option("--study", "study_key", required=True, help="Study id."),
        click.option("--site", "sites", multiple=True, help="Only this site (repeatable); none: all."),
        click.option("--forms", "forms", multiple=True, help="Only this form (repeatable, or "
                     "comma-separated); none: all."),
        click.option("--unblinded", is_flag=True, help="Include subjects' arms in a blinded study "
                     "(recorded in the manifest and the audit log)."),
        click.option("--force", is_flag=True, help="Replace an output that exists and is not empty."),
        pass_ctx,
    ]):
        command = decorator(command)
    return command


@contextlib.contextmanager
def progress(label, total):
    """A callback counting exported records: a bar on a terminal, a line per 10,000 otherwise."""
    done = [0]
    if sys.stderr.isatty():
        with click.progressbar(length=max(total, 1), label=label, file=sys.stderr, show_pos=True) as bar:
            yield bar.update
        return

    def step(n):
        before = done[0] // PROGRESS_EVERY
        done[0] += n
        if done[0] // PROGRESS_EVERY > before:
            click.echo(f"{label}: {done[0]} records", err=True)

    yield step


def _run(ctx, study_key, sites, forms, unblinded, force, fmt, output, **options):
    from ecrf.actor import Actor
    from ecrf.exchange.export_service import count_records, operator_scope, run_export

    forms = tuple(f.strip() for chunk in forms for f in chunk.split(",") if f.strip())
    with user_errors(), ctx.session() as session:
        scope = operator_scope(session, study_key, sites, forms, unblinded)
        with progress(f"export {fmt} of {study_key}", count_records(session, scope)) as step:
            result = run_export(session, Actor.cli(), scope, fmt, output, force=force, progress=step, **options)
    total = sum(result.rows.values())
    click.echo(f"{fmt} export of {study_key}: {total} rows in {len(result.rows)} table(s) -> {output} "
               f"(manifest sha256 {result.manifest_sha256})")


@export_group.command("csv")
@_scope_options
@click.option("--long", "long_layout", is_flag=True, help="One row per subject, visit, record and field "
              "(long.csv) instead of one file per form.")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="Folder to create.")
def export_csv(ctx, study_key, sites, forms, unblinded, force, long_layout, output):
    """One CSV per form (and per repeating group), subjects.csv, dictionary.csv, manifest.json."""
    _run(ctx, study_key, sites, forms, unblinded, force, "csv-long" if long_layout else "csv", output)


@export_group.command("odm")
@_scope_options
@click.option("--audit", "with_audit", is_flag=True, help="Add each value's AuditRecord (who, when, why "
              "of its last change).")
@click.option("--signatures", "with_signatures", is_flag=True, help="Add the forms' e-signatures.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="File to write (.xml).")
def export_odm(ctx, study_key, sites, forms, unblinded, force, with_audit, with_signatures, output):
    """CDISC ODM 1.3.2: study metadata and ClinicalData in one XML file."""
    _run(ctx, study_key, sites, forms, unblinded, force, "odm", output, audit=with_audit,
         signatures=with_signatures)


@export_group.command("dataset-json")
@_scope_options
@click.option("--ndjson", is_flag=True, help="NDJSON (metadata line, then one line per row).")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="Folder to create.")
def export_dataset_json(ctx, study_key, sites, forms, unblinded, force, ndjson, output):
    """CDISC Dataset-JSON 1.1: one file per form and repeating group."""
    _run(ctx, study_key, sites, forms, unblinded, force, "ndjson" if ndjson else "dataset-json", output)


@export_group.command("stats")
@_scope_options
@click.option("--format", "fmt", type=click.Choice(["dta", "sav", "xpt"]), required=True,
              help="Stata (.dta), SPSS (.sav) or SAS transport (.xpt).")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="Folder to create.")
def export_stats(ctx, study_key, sites, forms, unblinded, force, fmt, output):
    """Stata, SPSS or SAS transport files with variable and value labels (the 'stats' extra)."""
    _run(ctx, study_key, sites, forms, unblinded, force, fmt, output)
