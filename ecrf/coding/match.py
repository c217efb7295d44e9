"""Ranking of dictionary entries against a typed query, shared by CTCAE and MedDRA search.

A query matches an entry by its code (a prefix of it) or by words: every word of the query must
start some word of the entry's name or of its other texts (the SOC). Prefix matches of the whole
name come first, then whole-word matches of the name, then matches that need the SOC.
"""
import re

_WORD = re.compile(r"[a-z0-9]+")


def words(text):
    return _WORD.findall(text.lower())


def rank(query, name, code, others=()):
    """A sort key (lower is better) for an entry, or None when it does not match ``query``."""
    q = " ".join(words(query))
    if not q:
        return None
    if q.isdigit():
        return 0 if code == q else 1 if code.startswith(q) else None
    lowered = " ".join(words(name))
    if lowered == q:
        return 0
    if lowered.startswith(q):
        return 1
    name_words = words(name)
    wanted = q.split()
    if all(any(w.startswith(x) for w in name_words) for x in wanted):
        return 2
    other_words = name_words + [w for text in others for w in words(text)]
    if all(any(w.startswith(x) for w in other_words) for x in wanted):
        return 3
    return None


def search(entries, query, limit, key):
    """The best ``limit`` entries for ``query``; ``key(entry)`` gives (name, code, others)."""
    found = []
    for entry in entries:
        name, code, others = key(entry)
        r = rank(query, name, code, others)
        if r is not None:
            found.append((r, name.lower(), code, entry))
    found.sort(key=lambda item: item[:3])
    return [item[3] for item in found[:max(limit, 0)]]
