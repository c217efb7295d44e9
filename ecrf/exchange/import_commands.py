"""``ecrf import redcap|odm|data``: study definitions from REDCap and ODM, and data in bulk.

The definition imports read one file and write a study folder; they touch no database (so the
permission table asks nothing of them). The data import changes clinical data, so it acts as a
named user (``--as USER``, who confirms with their password) holding ``data.import`` at each
subject's site; every row goes through the capture service and the audit log.
"""
import sys

import click

from ecrf.cli import _acting_user, pass_ctx, user_errors


@click.group("import")
def import_group():
    """Import study definitions (REDCap, ODM) and form data (CSV)."""


def _report(conversion, loaded, output):
    for where, message in conversion.warnings:
        click.echo(f"warning: {where}: {message}", err=True)
    fields = sum(len(f.fields) for f in loaded.forms.values())
    click.echo(f"{output}: {len(loaded.forms)} forms, {fields} fields, {len(loaded.visits)} visits, "
               f"{len(conversion.warnings)} warning(s); valid (content {loaded.hash[:12]})")


def _definition_options(command):
    """The options both definition imports take: the study id, the folder, its title, --force."""
    for decorator in reversed([
        click.option("--study-id", required=True, help="Id of the new study (lower-case, digits, '-')."),
        click.option("-o", "--output", required=True, type=click.Path(file_okay=False),
                     help="Study folder to write, named after the study id (forms/ID)."),
        click.option("--title", help="The study's title (default: the study id, or ODM's StudyName)."),
        click.option("--force", is_flag=True, help="Replace the .json files of an existing study folder."),
    ]):
        command = decorator(command)
    return command


def _convert(run):
    """The result of a conversion, or every problem it met on stderr and exit 1."""
    from ecrf.exchange.studyfiles import ConversionRefused

    with user_errors():
        try:
            return run()
        except ConversionRefused as exc:
            _refusal(exc)


def _refusal(exc):
    for where, message in getattr(exc, "errors", ()):
        click.echo(f"{where}: {message}", err=True)
    raise click.ClickException(f"{len(exc.errors)} problem(s); nothing was written") from None


@import_group.command("redcap")
@click.argument("dictionary", type=click.Path(exists=True, dir_okay=False))
@_definition_options
@click.option("--events", "events_path", type=click.Path(exists=True, dir_okay=False),
              help="REDCap's instrument-event mapping (formEventMapping CSV): events become visits.")
@click.option("--repeating", multiple=True, metavar="FORM",
              help="A repeating instrument: it becomes a log form (repeatable).")
@click.option("--encoding", help="The files' encoding when not UTF-8.")
def import_redcap_command(dictionary, study_id, output, title, force, events_path, repeating, encoding):
    """Convert a REDCap data dictionary (CSV) into a study folder that ecrf study validate accepts;
    what cannot be converted is listed as warnings, one per field."""
    from ecrf.exchange.import_redcap import import_redcap

    _report(*_convert(lambda: import_redcap(dictionary, study_id, output, title=title,
                                            events_path=events_path, repeating=repeating,
                                            encoding=encoding, force=force)), output)


@import_group.command("odm")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@_definition_options
def import_odm_command(file, study_id, output, title, force):
    """Convert the metadata of a CDISC ODM 1.3 file into a study folder that ecrf study validate
    accepts; DTDs and entities are refused."""
    from ecrf.exchange.import_odm import import_odm

    _report(*_convert(lambda: import_odm(file, study_id, output, title=title, force=force)), output)


def _value(value):
    return "(empty)" if value is None else str(value)


@import_group.command("data")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--study", "study_key", required=True, help="Study id.")
@click.option("--form", "form_key", required=True, help="The form every row is a record of.")
@click.option("--reason", help="Reason for change, for rows that change saved data.")
@click.option("--dry-run", is_flag=True, help="Report what would change, write nothing.")
@click.option("--encoding", help="The file's encoding when not UTF-8.")
@click.option("--group", "groups", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="A repeating group's rows, in the CSV export's <form>__<group>.csv file (repeatable).")
@click.option("--as", "username", required=True, help="Import as this user (data.import at each "
              "subject's site), who confirms with their password.")
@click.option("--password-stdin", is_flag=True, help="Read that password from one line of stdin.")
@pass_ctx
def import_data_command(ctx, file, study_key, form_key, reason, dry_run, encoding, groups, username,
                        password_stdin):
    """Import one record per row of a CSV file (the columns of the CSV export) through the capture
    service: all rows or none, every problem listed as 'row N: /field: message'."""
    from ecrf.exchange.import_data import ImportRefused, import_data

    with user_errors(), ctx.session() as session:
        user = _acting_user(ctx, session, username, password_stdin)
        try:
            report = import_data(session, user, study_key, form_key, file, reason=reason,
                                 dry_run=dry_run, encoding=encoding, groups=groups)
        except ImportRefused as exc:
            for line in exc.lines():
                click.echo(line, err=True)
            raise click.ClickException(str(exc)) from None
    for row in report.rows:
        if row.outcome == "unchanged":
            continue
        where = f"{row.subject} {row.visit or form_key}" + (f" #{row.record}" if row.record else "")
        click.echo(f"row {row.row}: {row.outcome} {where}")
        for pointer, old, new in row.changes:
            click.echo(f"    {pointer}: {_value(old)} -> {_value(new)}")
    verb = "would be" if dry_run else "were"
    click.echo(f"{len(report.rows)} row(s): {report.count('created')} created, {report.count('changed')} "
               f"changed, {report.count('unchanged')} unchanged" + (f" ({verb} written: dry run, nothing "
                                                                   "written)" if dry_run else ""))
    sys.stdout.flush()
