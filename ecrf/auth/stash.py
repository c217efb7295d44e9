"""What a user had typed when their session timed out: kept server-side (the values may be patient
data, so never in the cookie), tied to the user and the page, and handed back once when the same
user signs in again and returns to that page. Not clinical data: nothing is saved from it, and the
row goes as soon as it has been shown (or after a day)."""
import datetime as dt

from sqlalchemy import delete, select

from ecrf.db import utcnow, write_transaction
from ecrf.models import FormStash

#: Stashes older than this are never shown again (and are removed at the next stash).
KEEP = dt.timedelta(days=1)
#: Longest value kept per field and most fields kept: a stash is a form's worth, not an upload.
MAX_VALUE, MAX_FIELDS = 20_000, 500


def stash_form(session, user_id, path, fields):
    """Keep ``fields`` ([(name, value)], CSRF token excluded) for ``user_id`` and page ``path``;
    returns the stash id to remember in the (new) session."""
    kept = [[str(k)[:200], str(v)[:MAX_VALUE]] for k, v in fields if k != "csrf_token"][:MAX_FIELDS]
    with write_transaction(session):
        session.execute(delete(FormStash).where(FormStash.created_at < utcnow() - KEEP))
        row = FormStash(user_id=user_id, path=path[:2000], fields=kept)
        session.add(row)
        session.flush()
    return row.id


def take_stash(session, stash_id, user_id, path):
    """The stashed fields when ``stash_id`` is this user's stash for this page (then removed), else None."""
    row = session.scalar(select(FormStash).where(FormStash.id == stash_id)) if isinstance(stash_id, int) else None
    if row is None or row.user_id != user_id or row.path != path:
        return None
    fields = row.fields if row.created_at > utcnow() - KEEP else None
    with write_transaction(session):
        session.execute(delete(FormStash).where(FormStash.id == row.id))
    return fields
