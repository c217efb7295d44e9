"""Recording refusals: every permission-denied answer (403, or the 404 that hides another site's
objects) leaves an audit event naming who asked for what. Called from one place per channel: the
web's error handler (pages and API) and the CLI's permission check."""
from audit import Action, append
from ecrf.db import write_transaction


def record_denial(session, actor, action, study=None, site=None, detail=None):
    """Append a permission_denied event in its own transaction (the refused request wrote nothing).

    ``action`` is the permission asked for ("form.sign"); ``detail`` says where (method and path).
    """
    if session.in_transaction() and not session.info.get("ecrf_writing"):
        # A read the refused request began; nothing of it is kept, and the event needs a writer.
        session.rollback()
    reason = f"{action}: {detail}" if detail else action
    with write_transaction(session):
        append(session.connection(), actor.event(Action.PERMISSION_DENIED, study=study, site=site,
                                                 reason=reason[:2000]))
