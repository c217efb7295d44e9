"""``ecrf randomization generate | export | import``: the allocation list at the command line.

The operator makes or loads the list (``study.manage``) and may export it (``export``); the export
is unblinded by nature, so it is audited. ``generate`` prints counts and never an arm.
"""
from pathlib import Path

import click

from ecrf.actor import Actor
from ecrf.cli import pass_ctx, user_errors


@click.group()
def randomization():
    """The concealed allocation list: generate, export (unblinded, audited), import."""


@randomization.command("generate")
@click.option("--study", "study_key", required=True, help="Study id.")
@click.option("--size", type=click.IntRange(1), default=None,
              help="Slots per stratum, at least (whole blocks); default 100.")
@pass_ctx
def generate(ctx, study_key, size):
    """Create the study's concealed allocation list from a secure random seed."""
    from ecrf.randomization import service

    with user_errors(), ctx.session() as session:
        row, count = service.generate_list(session, Actor.cli(), study_key, size)
        strata = len(row.parameters.get("strata", ())) or 1
    if row.method == "minimization":
        click.echo(f"{study_key}: minimization seed stored; subjects are allocated as they are randomized")
    else:
        click.echo(f"{study_key}: {count} concealed slots over {strata} stratum/strata ({row.method})")


@randomization.command("export")
@click.option("--study", "study_key", required=True, help="Study id.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Write the CSV here (it shows every arm: keep it with the unblinded statistician).")
@pass_ctx
def export(ctx, study_key, output):
    """Write the list, its seed and parameters (unblinded; the export is audited)."""
    from ecrf.randomization import service

    partial = Path(f"{output}.partial")
    try:
        with user_errors(), ctx.session() as session, partial.open("w", encoding="utf-8", newline="") as out:
            count = service.export_list(session, Actor.cli(), study_key, out)
        partial.replace(output)
    finally:
        partial.unlink(missing_ok=True)
    click.echo(f"{count} slots of {study_key} written to {output}")


@randomization.command("import")
@click.option("--study", "study_key", required=True, help="Study id.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@pass_ctx
def import_(ctx, study_key, file):
    """Load a list made elsewhere (the export's CSV columns); refused whole on any bad row."""
    from ecrf.errors import Invalid
    from ecrf.randomization import service

    text = Path(file).read_text(encoding="utf-8-sig")
    with user_errors(), ctx.session() as session:
        try:
            _, count = service.import_list(session, Actor.cli(), study_key, text)
        except Invalid as exc:
            for where, message in exc.errors:
                click.echo(f"{file}: {where}: {message}", err=True)
            raise
    click.echo(f"{count} slots imported into {study_key}")
