"""[4] Review of captured data: queries, source data verification, e-signatures and locks.

Same shape as ``ecrf.capture``: services ``(session, actor, …)`` that write their change and its audit
events in one ``write_transaction``; views, the API and the CLI call them and nothing else.
"""
