"""REDCap branching logic and calculations, translated (never evaluated) into ecrf's languages.

A REDCap expression is parsed into a small tree, then written out either as a JSON Schema condition
(``x-ecrf.show_if``, for branching logic) or as an ecrf expression (``x-ecrf.calculate``). Whatever
has no faithful translation raises ``Untranslatable`` with the reason; the caller turns it into a
warning on the field and leaves the logic out.
"""
import dataclasses
import operator
import re


class Untranslatable(ValueError):
    """The logic has no faithful translation; the message says why."""


_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<ref>\[[^\[\]]*\])
  | (?P<num>\d+(?:\.\d+)?)
  | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<op><>|!=|<=|>=|==|=|<|>|\+|-|\*|/|\^|\(|\)|,)
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
""", re.VERBOSE)

#: Characters REDCap exports use for a minus sign or quotes that are not ASCII.
_NORMALISE = str.maketrans({"\u2212": "-", "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})


@dataclasses.dataclass(frozen=True)
class Ref:
    name: str
    #: The checkbox code of ``[field(code)]``; None for a plain field.
    code: str | None = None


@dataclasses.dataclass(frozen=True)
class Lit:
    value: object


@dataclasses.dataclass(frozen=True)
class Op:
    op: str
    args: tuple


@dataclasses.dataclass(frozen=True)
class Call:
    name: str
    args: tuple


def _tokens(source):
    source = source.translate(_NORMALISE)
    pos, out = 0, []
    while pos < len(source):
        m = _TOKEN.match(source, pos)
        if m is None:
            raise Untranslatable(f"unexpected character {source[pos]!r} at character {pos + 1}")
        pos = m.end()
        if m.lastgroup != "ws":
            out.append((m.lastgroup, m.group()))
    return out


_REF = re.compile(r"^([a-z][a-z0-9_]*)(?:\(([^()]+)\))?$")


class _Parser:
    def __init__(self, source):
        self.toks = _tokens(source)
        self.i = 0

    def peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else (None, None)

    def take(self, value=None):
        kind, text = self.peek()
        if kind is None:
            raise Untranslatable("the logic ends too early")
        if value is not None and text.lower() != value:
            raise Untranslatable(f"expected {value!r} but found {text!r}")
        self.i += 1
        return kind, text

    def word(self, *words):
        kind, text = self.peek()
        return kind == "word" and text.lower() in words

    def parse(self):
        if not self.toks:
            raise Untranslatable("the logic is empty")
        node = self.or_()
        if self.i != len(self.toks):
            raise Untranslatable(f"unexpected {self.peek()[1]!r}")
        return node

    def or_(self):
        node = self.and_()
        while self.word("or"):
            self.take()
            node = Op("or", (node, self.and_()))
        return node

    def and_(self):
        node = self.compare()
        while self.word("and"):
            self.take()
            node = Op("and", (node, self.compare()))
        return node

    def compare(self):
        node = self.sum()
        kind, text = self.peek()
        if kind == "op" and text in ("=", "==", "<>", "!=", "<", "<=", ">", ">="):
            self.take()
            op = {"=": "==", "<>": "!="}.get(text, text)
            node = Op(op, (node, self.sum()))
        return node

    def sum(self):
        node = self.product()
        while self.peek()[1] in ("+", "-"):
            node = Op(self.take()[1], (node, self.product()))
        return node

    def product(self):
        node = self.power()
        while self.peek()[1] in ("*", "/"):
            node = Op(self.take()[1], (node, self.power()))
        return node

    def power(self):
        node = self.unary()
        if self.peek()[1] == "^":
            self.take()
            node = Op("^", (node, self.unary()))
        return node

    def unary(self):
        if self.peek()[1] == "-":
            self.take()
            return Op("neg", (self.unary(),))
        return self.atom()

    def atom(self):
        kind, text = self.take()
        if kind == "num":
            return Lit(float(text) if "." in text else int(text))
        if kind == "str":
            return Lit(re.sub(r"\\(.)", r"\1", text[1:-1]))
        if kind == "ref":
            if self.peek()[0] == "ref":
                raise Untranslatable(f"{text}{self.peek()[1]}: a reference to another event is not supported")
            m = _REF.match(text[1:-1].strip())
            if m is None:
                raise Untranslatable(f"{text}: smart variables and instance references are not supported")
            return Ref(m.group(1), m.group(2))
        if kind == "op" and text == "(":
            node = self.or_()
            self.take(")")
            return node
        if kind == "word":
            low = text.lower()
            if low in ("true", "false"):
                return Lit(low == "true")
            if self.peek()[1] == "(":
                self.take()
                args = []
                if self.peek()[1] != ")":
                    args.append(self.or_())
                    while self.peek()[1] == ",":
                        self.take()
                        args.append(self.or_())
                self.take(")")
                return Call(low, tuple(args))
        raise Untranslatable(f"unexpected {text!r}")


def parse(source):
    """The tree of a REDCap expression; Untranslatable when it does not parse."""
    return _Parser(source).parse()


def references(node):
    """The field names a tree reads."""
    if isinstance(node, Ref):
        return {node.name}
    if isinstance(node, (Op, Call)):
        return set().union(*(references(a) for a in node.args)) if node.args else set()
    return set()


# --- branching logic -> JSON Schema condition ------------------------------------------------------

#: Field kinds the translator needs: "number", "integer", "choice", "checkbox", "text", "date".
_NUMERIC = ("number", "integer")
_ORDER = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def _present(name, schema=None):
    condition = {"required": [name]}
    if schema is not None:
        condition = {"properties": {name: schema}, "required": [name]}
    return condition


def _literal_for(kind, value, field):
    """The stored value a REDCap literal stands for, given the kind of field it is compared with."""
    if kind in _NUMERIC:
        if isinstance(value, bool):
            raise Untranslatable(f"[{field}] is compared with {value!r}")
        if isinstance(value, str):
            try:
                value = float(value) if "." in value else int(value)
            except ValueError:
                raise Untranslatable(f"[{field}] is a number but is compared with {value!r}") from None
        return value
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value) if not isinstance(value, str) else value


def to_condition(node, kinds):
    """A JSON Schema condition that holds exactly when the REDCap branching logic is true.

    ``kinds`` maps each field of the form to its kind; a field outside it (another instrument) makes
    the logic untranslatable. REDCap reads an empty field as ``''``: ``[x] = ''`` is "x is empty",
    ``[x] <> '1'`` holds for an empty ``x``, and an ordering comparison with an empty field is false.
    """
    if isinstance(node, Op) and node.op in ("and", "or"):
        parts = []
        for arg in node.args:  # flatten a and b and c into one allOf
            sub = to_condition(arg, kinds)
            key = "allOf" if node.op == "and" else "anyOf"
            parts.extend(sub[key] if set(sub) == {key} else [sub])
        return {"allOf" if node.op == "and" else "anyOf": parts}
    if isinstance(node, Op) and node.op in ("==", "!=", "<", "<=", ">", ">="):
        left, right = node.args
        if isinstance(right, Ref) and isinstance(left, Lit):
            flip = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}
            left, right, node = right, left, Op(flip.get(node.op, node.op), (right, left))
        if not (isinstance(left, Ref) and isinstance(right, Lit)):
            call = _first_call(node)
            if call is not None:
                raise Untranslatable(f"the function {call}() cannot be translated into a condition")
            raise Untranslatable("only comparisons of a field with a value can be translated")
        return _comparison(left, node.op, right.value, kinds)
    if isinstance(node, Call):
        raise Untranslatable(f"the function {node.name}() cannot be translated into a condition")
    raise Untranslatable("only comparisons joined by and/or can be translated into a condition")


def _first_call(node):
    if isinstance(node, Call):
        return node.name
    for arg in getattr(node, "args", ()):
        found = _first_call(arg)
        if found is not None:
            return found
    return None


def _kind(kinds, name):
    """(kind, codes) of a field: ``kinds`` maps a name to a kind, or to (kind, codes) for a code list."""
    kind = kinds[name]
    return kind if isinstance(kind, tuple) else (kind, None)


def _comparison(ref, op, value, kinds):
    name = ref.name
    if name not in kinds:
        raise Untranslatable(f"[{name}] is not a field of this instrument")
    kind, codes = _kind(kinds, name)
    if ref.code is not None:
        if kind != "checkbox":
            raise Untranslatable(f"[{name}({ref.code})] names a code, but {name} is not a checkbox")
        ticked = _present(name, {"contains": {"const": ref.code}})
        flag = _literal_for("text", value, name)
        if op not in ("==", "!=") or flag not in ("0", "1"):
            raise Untranslatable(f"[{name}({ref.code})] can only be compared with '1' or '0'")
        return ticked if (op == "==") == (flag == "1") else {"not": ticked}
    if kind == "checkbox":
        raise Untranslatable(f"[{name}] is a checkbox: name one of its codes, as [{name}(code)]")
    if value == "" and op in ("==", "!="):
        return {"not": _present(name)} if op == "==" else _present(name)
    literal = _literal_for(kind, value, name)
    if op == "==":
        return _present(name, {"const": literal})
    if op == "!=":
        return {"not": _present(name, {"const": literal})}
    if codes is not None and op in _ORDER:
        # an ordering on a code list means the codes that satisfy it, when every code is a number
        try:
            number = float(value)
            chosen = [c for c in codes if _ORDER[op](float(c), number)]
        except ValueError:
            raise Untranslatable(f"[{name}] {op} {value!r}: the codes are not all numbers") from None
        return _present(name, {"enum": chosen})
    if kind not in _NUMERIC or not isinstance(literal, (int, float)):
        raise Untranslatable(f"[{name}] {op} {value!r}: JSON Schema orders numbers only")
    bound = {"<": "exclusiveMaximum", "<=": "maximum", ">": "exclusiveMinimum", ">=": "minimum"}[op]
    return _present(name, {bound: literal})


# --- calculations -> ecrf expression ---------------------------------------------------------------

#: REDCap functions with an ecrf function of the same meaning (and arity rules).
_SAME = {"sum": "sum", "mean": "mean", "min": "min", "max": "max", "abs": "abs", "if": "if"}


def to_expression(node, fields):
    """The ecrf expression (text) computing the same value as a REDCap calculation.

    ``fields`` maps each field of the form to its kind (a value compared with a field is written
    as the field stores it: ``[sex] = 1`` compares with ``'1'`` when ``sex`` is a code list). ``x ^ n`` with a whole ``n`` from 2 to 4 is
    written as a product; ``datediff`` in days between two dates becomes ``days_between``.
    """
    if isinstance(node, Lit):
        if isinstance(node.value, bool):
            return "true" if node.value else "false"
        if isinstance(node.value, str):
            return "'" + node.value.replace("\\", "\\\\").replace("'", "\\'") + "'"
        return repr(node.value)
    if isinstance(node, Ref):
        if node.code is not None:
            raise Untranslatable(f"[{node.name}({node.code})]: checkbox codes cannot be read in a calculation")
        if node.name not in fields:
            raise Untranslatable(f"[{node.name}] is not a field of this instrument")
        return node.name
    if isinstance(node, Op):
        if node.op == "neg":
            return f"-({to_expression(node.args[0], fields)})"
        if node.op == "^":
            base, exponent = node.args
            if not (isinstance(exponent, Lit) and exponent.value in (2, 3, 4)
                    and not isinstance(exponent.value, bool)):
                raise Untranslatable("only powers 2, 3 and 4 (x^2) can be translated")
            inner = f"({to_expression(base, fields)})"
            return "(" + " * ".join([inner] * int(exponent.value)) + ")"
        args = node.args
        if node.op in ("==", "!=", "<", "<=", ">", ">="):
            a, b = args
            if isinstance(a, Ref) and isinstance(b, Lit) and a.name in fields and a.code is None:
                args = (a, Lit(_literal_for(_kind(fields, a.name)[0], b.value, a.name)))
            elif isinstance(b, Ref) and isinstance(a, Lit) and b.name in fields and b.code is None:
                args = (Lit(_literal_for(_kind(fields, b.name)[0], a.value, b.name)), b)
        left, right = (to_expression(a, fields) for a in args)
        return f"({left} {node.op} {right})"
    if isinstance(node, Call):
        if node.name in _SAME:
            return f"{_SAME[node.name]}({', '.join(to_expression(a, fields) for a in node.args)})"
        if node.name == "round" and 1 <= len(node.args) <= 2:
            return f"round({', '.join(to_expression(a, fields) for a in node.args)})"
        if node.name == "datediff" and len(node.args) >= 3:
            unit = node.args[2]
            if isinstance(unit, Lit) and unit.value == "d" and (
                    len(node.args) == 3 or (isinstance(node.args[3], Lit) and node.args[3].value == "ymd")):
                if len(node.args) > 4:
                    raise Untranslatable("datediff() with a signed flag cannot be translated")
                # REDCap's datediff is the absolute difference unless told otherwise
                a, b = (to_expression(x, fields) for x in node.args[:2])
                return f"abs(days_between({a}, {b}))"
            raise Untranslatable("only datediff(..., 'd') between two dates can be translated")
        raise Untranslatable(f"the function {node.name}() has no equivalent in ecrf's expressions")
    raise Untranslatable("cannot be translated")
