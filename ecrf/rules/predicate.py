"""JSON Schema compiled to plain Python predicates, for the keywords study files write.

``compile_schema(schema)`` returns a function equivalent to
``Draft202012Validator(schema, format_checker=...).is_valid``, or None when the schema uses a keyword
outside the supported set (annotations aside): properties, required, const, enum, type, the number
bounds, minLength, maxLength, pattern, dependentRequired, format (checked only when a format checker is given, as
jsonschema does), items (without prefixItems), minItems, maxItems, uniqueItems, contains, not, allOf,
anyOf, oneOf, if/then/else and ``$ref`` to a local ``$defs`` pointer or ``$anchor``. jsonschema stays the truth: a caller uses the predicate only as a fast
"valid" answer and asks jsonschema whenever it says no (or there is no predicate), so an error is
always jsonschema's. Tests check the two agree on generated schemas and instances.

Used for ``show_if`` conditions (every field of every save) and, with ``relax_required``, for drafts
of a form (``ecrf.capture.validate``), where jsonschema's walk was the largest cost of a save.
"""
import re

try:  # jsonschema's own uniqueItems test, so both answer alike; without it uniqueItems is left to it
    from jsonschema._utils import uniq
except ImportError:  # pragma: no cover
    uniq = None

from ecrf.definitions.model import ref_target

#: Keywords that never change whether an instance is valid.
ANNOTATIONS = frozenset({"title", "description", "$comment", "default", "examples", "readOnly",
                         "writeOnly", "deprecated", "x-ecrf", "$schema", "then", "else", "$defs",
                         "$anchor"})
_NUMBER_TESTS = {"minimum": lambda v, b: v >= b, "maximum": lambda v, b: v <= b,
                 "exclusiveMinimum": lambda v, b: v > b, "exclusiveMaximum": lambda v, b: v < b}


def is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def json_equal(a, b):
    """JSON equality as jsonschema's const and enum see it (``1 == 1.0``, ``true != 1``)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if a != b:
        return False
    return type(a) is type(b) or (is_number(a) and is_number(b))


_TYPES = {
    "object": lambda v: isinstance(v, dict), "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str), "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None, "number": is_number,
    "integer": lambda v: is_number(v) and (isinstance(v, int) or v.is_integer()),
}


def compile_schema(schema, *, format_checker=None, relax_required=False):
    """A predicate equivalent to jsonschema's ``is_valid`` for ``schema``, or None (see above).

    ``format_checker``: check ``format`` with it (None: ``format`` is an annotation). With
    ``relax_required`` the predicate ignores ``required`` and ``dependentRequired`` wherever
    jsonschema would report them as errors of their own (through properties, items, allOf and then/else, not inside a test
    such as if, not, contains, anyOf or oneOf): how a draft is judged, since a draft may leave
    required fields empty.
    """
    return _Compiler(schema, format_checker).compile(schema, relax_required)


class _Compiler:
    def __init__(self, root, format_checker):
        self.root = root
        self.format_checker = format_checker
        #: ``$ref``s being compiled: one met again is a cycle, left to jsonschema.
        self.following = set()

    def compile(self, schema, relax=False):
        if schema is True or schema is False:
            return lambda value, result=schema: result
        if not isinstance(schema, dict):
            return None
        tests = []
        for key, arg in schema.items():
            if key in ANNOTATIONS or (key == "format" and self.format_checker is None):
                continue
            test = self.keyword(key, arg, schema, relax)
            if test is None:
                return None
            if test is not _ALWAYS:
                tests.append(test)
        if len(tests) == 1:
            return tests[0]
        return lambda value, tests=tuple(tests): all(test(value) for test in tests)

    def keyword(self, key, arg, schema, relax):
        """The test of one keyword, _ALWAYS when it tests nothing here, None when unsupported."""
        if key == "properties" and isinstance(arg, dict):
            subs = {name: self.compile(sub, relax) for name, sub in arg.items()}
            if any(test is None for test in subs.values()):
                return None
            subs = tuple(subs.items())
            return lambda v: not isinstance(v, dict) or all(
                test(v[name]) for name, test in subs if name in v)
        if key == "required" and isinstance(arg, list):
            if relax:
                return _ALWAYS
            names = tuple(arg)
            return lambda v: not isinstance(v, dict) or all(n in v for n in names)
        if key == "dependentRequired" and isinstance(arg, dict) and all(
                isinstance(names, list) for names in arg.values()):
            if relax:
                return _ALWAYS
            needs = tuple((trigger, tuple(names)) for trigger, names in arg.items())
            return lambda v: not isinstance(v, dict) or all(
                n in v for trigger, names in needs if trigger in v for n in names)
        if key == "const":
            return lambda v: json_equal(v, arg)
        if key == "enum" and isinstance(arg, list):
            values = tuple(arg)
            return lambda v: any(json_equal(v, x) for x in values)
        if key == "type" and isinstance(arg, (str, list)):
            names = [arg] if isinstance(arg, str) else arg
            if not all(isinstance(n, str) and n in _TYPES for n in names):
                return None
            checks = tuple(_TYPES[n] for n in names)
            return checks[0] if len(checks) == 1 else lambda v: any(c(v) for c in checks)
        if key in _NUMBER_TESTS and is_number(arg):
            test = _NUMBER_TESTS[key]
            return lambda v: not is_number(v) or test(v, arg)
        if key in ("minLength", "maxLength") and isinstance(arg, int) and not isinstance(arg, bool):
            if key == "minLength":
                return lambda v: not isinstance(v, str) or len(v) >= arg
            return lambda v: not isinstance(v, str) or len(v) <= arg
        if key == "pattern" and isinstance(arg, str):
            try:
                search = re.compile(arg).search
            except re.error:
                return None
            return lambda v: not isinstance(v, str) or search(v) is not None
        if key == "format" and isinstance(arg, str):
            conforms = self.format_checker.conforms
            return lambda v: conforms(v, arg)
        if key in ("minItems", "maxItems") and isinstance(arg, int) and not isinstance(arg, bool):
            if key == "minItems":
                return lambda v: not isinstance(v, list) or len(v) >= arg
            return lambda v: not isinstance(v, list) or len(v) <= arg
        if key == "uniqueItems" and isinstance(arg, bool) and uniq is not None:
            return (lambda v: not isinstance(v, list) or uniq(v)) if arg else _ALWAYS
        if key == "items" and "prefixItems" not in schema:
            sub = self.compile(arg, relax)
            if sub is None:
                return None
            return lambda v: not isinstance(v, list) or all(sub(x) for x in v)
        if key == "contains" and not {"minContains", "maxContains"} & set(schema):
            sub = self.compile(arg)
            if sub is None:
                return None
            return lambda v: not isinstance(v, list) or any(sub(x) for x in v)
        if key == "not":
            sub = self.compile(arg)
            return None if sub is None else lambda v: not sub(v)
        if key in ("allOf", "anyOf", "oneOf") and isinstance(arg, list) and arg:
            subs = [self.compile(x, relax if key == "allOf" else False) for x in arg]
            if any(test is None for test in subs):
                return None
            subs = tuple(subs)
            if key == "allOf":
                return lambda v: all(t(v) for t in subs)
            if key == "anyOf":
                return lambda v: any(t(v) for t in subs)
            return lambda v: sum(1 for t in subs if t(v)) == 1
        if key == "$ref" and isinstance(arg, str):
            target = ref_target(self.root, arg)
            if target is None or (arg, relax) in self.following:
                return None
            self.following.add((arg, relax))
            try:
                return self.compile(target, relax)
            finally:
                self.following.discard((arg, relax))
        if key == "if":
            condition = self.compile(arg)
            then = self.compile(schema.get("then", True), relax)
            otherwise = self.compile(schema.get("else", True), relax)
            if condition is None or then is None or otherwise is None:
                return None
            return lambda v: then(v) if condition(v) else otherwise(v)
        return None


def _always(_value):
    return True


#: A keyword that tests nothing here (``required`` of a draft, ``uniqueItems: false``).
_ALWAYS = _always
