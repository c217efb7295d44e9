"""Refuse, before any view runs, input that no database column can hold: one place for the whole
class instead of one check per route.

* Integer path segments (``<int:record>``) are bounded to ``MAX_DB_INT``, the largest value of the
  narrowest integer column (PostgreSQL ``INTEGER``; SQLite fails only from 2^63): a larger number
  names nothing that can exist, so it is a 404, never an overflow in the database driver. (Checked
  after routing, not in the URL converter: a converter that refuses makes werkzeug answer 405 when
  another method's rule has the same path.)
* Integer query parameters go through ``int_arg``, which answers 422 (like every other malformed
  filter) for what is not a whole number in that range.
* JSON bodies are parsed by ``GuardedJSONProvider``: nesting deeper than ``MAX_JSON_DEPTH``, NaN,
  Infinity and numbers that overflow a float are malformed JSON (400), so no recursive walk of a
  document (validation, the audit log's canonical form) can hit Python's recursion limit.
* ``refuse_unstorable`` (a ``before_request`` hook) answers 400 for a JSON body that does not parse
  (on every route, whether or not it reads the body), and when a NUL character (which
  PostgreSQL refuses in text) or, in JSON, a lone surrogate (which no UTF-8 database stores) appears
  anywhere in the path, the query, a header, a form field or the JSON body.
"""
import json
import math
import re

from flask import request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import BadRequest

from ecrf.errors import EcrfError, Invalid

#: The largest id or number a path segment or query parameter may carry (PostgreSQL ``INTEGER``).
MAX_DB_INT = 2**31 - 1
#: The largest value of a ``BIGINT`` column (the audit log's event numbers).
MAX_DB_BIGINT = 2**63 - 1
#: Deeper JSON than this is refused; ecrf's own documents (form data, missing flags) nest a few levels.
MAX_JSON_DEPTH = 64

_UNSTORABLE_TEXT = re.compile(r"\x00")
_UNSTORABLE_JSON = re.compile(r"[\x00\ud800-\udfff]")


class BadInput(EcrfError):
    status = 400


class NoSuchNumber(EcrfError):
    status = 404


def int_arg(name, default=None, minimum=0, maximum=MAX_DB_INT):
    """The whole-number query parameter ``name`` (``default`` when absent or empty); raises
    ``Invalid`` (422) for anything else, including numbers the database cannot hold."""
    value = request.args.get(name, "").strip()
    if value == "":
        return default
    if not value.isascii() or not value.isdigit() or not minimum <= int(value) <= maximum:
        raise Invalid(f"{name} must be a whole number from {minimum} to {maximum}")
    return int(value)


def _refuse_constant(name):
    raise ValueError(f"{name} is not a number JSON allows")


def _finite_float(text):
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is too large for a number")
    return value


def json_depth_exceeds(document, limit=MAX_JSON_DEPTH):
    """Whether arrays and objects in ``document`` nest deeper than ``limit`` (walked without recursion)."""
    stack = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


class GuardedJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider whose ``loads`` refuses (``ValueError``, so ``get_json`` answers 400)
    documents nested deeper than ``MAX_JSON_DEPTH``, NaN and Infinity, and numbers beyond a float."""

    def loads(self, s, **kwargs):
        kwargs.setdefault("parse_constant", _refuse_constant)
        kwargs.setdefault("parse_float", _finite_float)
        try:
            document = json.loads(s, **kwargs)
        except RecursionError:
            raise ValueError("the JSON is nested too deeply") from None
        if json_depth_exceeds(document):
            raise ValueError(f"the JSON is nested more than {MAX_JSON_DEPTH} levels deep")
        return document


def _json_unstorable(document):
    """Whether a key or string in ``document`` holds NUL or a lone surrogate."""
    stack = [document]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if _UNSTORABLE_JSON.search(value):
                return True
        elif isinstance(value, dict):
            if any(_UNSTORABLE_JSON.search(key) for key in value):
                return True
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return False


def _text_unstorable(multidict):
    return any(_UNSTORABLE_TEXT.search(key) or _UNSTORABLE_TEXT.search(value)
               for key, value in multidict.items(multi=True))


def refuse_unstorable():
    """``before_request``: a 400 for NUL in the path, query, form or JSON body, a 404 for a number in
    the path beyond the database (see the module)."""
    for name, value in (request.view_args or {}).items():
        if isinstance(value, int) and not 0 <= value <= MAX_DB_INT:
            raise NoSuchNumber(f"no {name.replace('_', ' ')} {value}: ids go up to {MAX_DB_INT}")
    if _UNSTORABLE_TEXT.search(request.path) or _text_unstorable(request.args):
        raise BadInput("the address holds a NUL character (%00), which ecrf does not accept")
    # Header values reach the audit log too (the User-Agent of every event).
    if any(_UNSTORABLE_TEXT.search(value) for value in request.headers.values()):
        raise BadInput("a request header holds a NUL character, which ecrf does not accept")
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    if request.is_json and request.content_length != 0:
        try:
            document = request.get_json()
        except BadRequest as exc:
            raise BadInput(f"the body is not valid JSON: {exc.description}") from None
        if _json_unstorable(document):
            raise BadInput("the JSON holds a NUL character or a lone surrogate (\\u0000, \\ud800), "
                           "which ecrf does not accept; nothing was saved")
    elif _text_unstorable(request.form):
        raise BadInput("the form holds a NUL character, which ecrf does not accept; nothing was saved")


def init_app(app):
    """Install the guards (before CSRF protection, so that its checks see no NUL either)."""
    app.json_provider_class = GuardedJSONProvider
    app.json = GuardedJSONProvider(app)
    app.before_request(refuse_unstorable)


def number_arg(name):
    """A positive event number argument, or None when absent (a 4xx for anything else)."""
    return int_arg(name, minimum=1, maximum=MAX_DB_BIGINT)
