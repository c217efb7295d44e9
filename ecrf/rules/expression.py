"""A small expression language over a whitelisted grammar, parsed and evaluated by our own code.

Grammar (lowest to highest precedence)::

    expr    := or
    or      := and ("or" and)*
    and     := not ("and" not)*
    not     := "not" not | compare
    compare := sum (("==" | "!=" | "<" | "<=" | ">" | ">=") sum)?
    sum     := product (("+" | "-") product)*
    product := unary (("*" | "/") unary)*
    unary   := "-" unary | atom
    atom    := NUMBER | STRING | "true" | "false" | "null" | NAME ("." NAME)* | call | "(" expr ")"
    call    := FUNCTION "(" [expr ("," expr)*] ")"

Names are fields of the form's document; ``group.field`` reaches a column of a repeating group and
yields a list. Null propagates through arithmetic and comparisons; aggregates skip nulls and flatten
lists. The parsed tree is plain tuples, so it can also be sent to the browser as JSON.
"""
import dataclasses
import datetime as dt
import decimal
import functools
import operator
import re


class ExpressionError(ValueError):
    """An expression that does not parse, with the character offset of the problem."""

    def __init__(self, message, position=None):
        super().__init__(message if position is None else f"{message} (at character {position + 1})")
        self.position = position


_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<name>[A-Za-z][A-Za-z0-9_]*)
  | (?P<op>==|!=|<=|>=|[<>+\-*/(),.])
""", re.VERBOSE)

KEYWORDS = {"and", "or", "not", "true", "false", "null"}
MAX_LENGTH = 2000
MAX_DEPTH = 50
#: Deepest tree accepted (a long chain such as a+b+c+... nests one level per operator); evaluation
#: recurses over the tree, so this keeps it far from Python's recursion limit.
MAX_TREE_DEPTH = 200


def _tokens(source):
    pos = 0
    while pos < len(source):
        match = _TOKEN.match(source, pos)
        if not match:
            raise ExpressionError(f"unexpected character {source[pos]!r}", pos)
        kind = match.lastgroup
        if kind != "ws":
            yield kind, match.group(), pos
        pos = match.end()
    yield "end", "", pos


class _Parser:
    def __init__(self, source):
        self.tokens = list(_tokens(source))
        self.i = 0
        self.depth = 0

    def peek(self):
        return self.tokens[self.i]

    def take(self, kind=None, value=None):
        tok = self.tokens[self.i]
        if (kind and tok[0] != kind) or (value and tok[1] != value):
            want = value or kind
            got = tok[1] or "the end"
            raise ExpressionError(f"expected {want!r} but found {got!r}", tok[2])
        self.i += 1
        return tok

    def at(self, kind, value=None):
        tok = self.peek()
        return tok[0] == kind and (value is None or tok[1] == value)

    def parse(self):
        tree = self.expr()
        tok = self.peek()
        if tok[0] != "end":
            raise ExpressionError(f"unexpected {tok[1]!r}", tok[2])
        return tree

    def expr(self):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError("expression nested too deeply", self.peek()[2])
        try:
            return self.or_()
        finally:
            self.depth -= 1

    def or_(self):
        left = self.and_()
        while self.at("name", "or"):
            self.take()
            left = ("or", left, self.and_())
        return left

    def and_(self):
        left = self.not_()
        while self.at("name", "and"):
            self.take()
            left = ("and", left, self.not_())
        return left

    def not_(self):
        if self.at("name", "not"):
            self.take()
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise ExpressionError("expression nested too deeply", self.peek()[2])
            try:
                return ("not", self.not_())
            finally:
                self.depth -= 1
        return self.compare()

    def compare(self):
        left = self.sum()
        tok = self.peek()
        if tok[0] == "op" and tok[1] in ("==", "!=", "<", "<=", ">", ">="):
            self.take()
            return ("cmp", tok[1], left, self.sum())
        return left

    def sum(self):
        left = self.product()
        while self.peek()[0] == "op" and self.peek()[1] in "+-":
            op = self.take()[1]
            left = ("arith", op, left, self.product())
        return left

    def product(self):
        left = self.unary()
        while self.peek()[0] == "op" and self.peek()[1] in ("*", "/"):
            op = self.take()[1]
            left = ("arith", op, left, self.unary())
        return left

    def unary(self):
        if self.at("op", "-"):
            self.take()
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise ExpressionError("expression nested too deeply", self.peek()[2])
            try:
                return ("neg", self.unary())
            finally:
                self.depth -= 1
        return self.atom()

    def atom(self):
        kind, value, pos = self.peek()
        if kind == "number":
            self.take()
            return ("lit", int(value) if re.fullmatch(r"\d+", value) else float(value))
        if kind == "string":
            self.take()
            return ("lit", re.sub(r"\\(.)", r"\1", value[1:-1]))
        if kind == "op" and value == "(":
            self.take()
            inner = self.expr()
            self.take("op", ")")
            return inner
        if kind == "name":
            self.take()
            if value in ("true", "false"):
                return ("lit", value == "true")
            if value == "null":
                return ("lit", None)
            if value in KEYWORDS:
                raise ExpressionError(f"unexpected {value!r}", pos)
            if self.at("op", "("):
                if value not in FUNCTIONS:
                    raise ExpressionError(f"unknown function {value!r}", pos)
                self.take()
                args = []
                if not self.at("op", ")"):
                    args.append(self.expr())
                    while self.at("op", ","):
                        self.take()
                        args.append(self.expr())
                self.take("op", ")")
                low, high = FUNCTIONS[value][1]
                if not low <= len(args) <= (high if high is not None else len(args)):
                    raise ExpressionError(f"{value}() takes {_arity_words(low, high)}", pos)
                return ("call", value, tuple(args))
            path = [value]
            while self.at("op", "."):
                self.take()
                path.append(self.take("name")[1])
            return ("name", tuple(path))
        raise ExpressionError(f"unexpected {value or 'end of expression'!r}", pos)


def _arity_words(low, high):
    if high is None:
        return f"at least {low} argument{'s' if low != 1 else ''}"
    if low == high:
        return f"exactly {low} argument{'s' if low != 1 else ''}"
    return f"{low} to {high} arguments"


# --- evaluation -------------------------------------------------------------------------------

def _flatten(values):
    for value in values:
        if isinstance(value, list):
            yield from _flatten(value)
        elif value is not None:
            yield value


def _numbers(values):
    out = []
    for value in _flatten(values):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{value!r} is not a number")
        out.append(value)
    return out


def _sum(*args):
    nums = _numbers(args)
    return sum(nums) if nums else None


def _mean(*args):
    nums = _numbers(args)
    return sum(nums) / len(nums) if nums else None


def _min(*args):
    vals = list(_flatten(args))
    return min(vals) if vals else None


def _max(*args):
    vals = list(_flatten(args))
    return max(vals) if vals else None


def round_half_away(value, digits=0):
    """Round half away from zero (2.5 -> 3, -2.5 -> -3), as clinicians and spreadsheets expect;
    an int for ``digits`` <= 0. Calculated values are stored rounded this way too."""
    if value is None or digits is None:
        return None
    quantum = decimal.Decimal(1).scaleb(-int(digits))
    result = decimal.Decimal(repr(value)).quantize(quantum, rounding=decimal.ROUND_HALF_UP)
    return int(result) if digits <= 0 else float(result)


def _date(value):
    if value is None:
        return None
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value[:10]):
        return dt.date.fromisoformat(value[:10])
    return None  # partial or malformed dates give no result rather than a guess


def _days_between(a, b):
    a, b = _date(a), _date(b)
    return None if a is None or b is None else (b - a).days


def _years_between(a, b):
    a, b = _date(a), _date(b)
    if a is None or b is None:
        return None
    return b.year - a.year - ((b.month, b.day) < (a.month, a.day))


def _if(cond, a, b):
    return a if cond is True else b


def _coalesce(*args):
    return next((a for a in args if a is not None), None)


def _abs(value):
    return abs(value) if _is_num(value) else None


def _count(*args):
    return sum(1 for _ in _flatten(args))


#: name -> (function, (min args, max args or None)); "if" is evaluated lazily below.
FUNCTIONS = {
    "sum": (_sum, (1, None)), "mean": (_mean, (1, None)), "count": (_count, (1, None)),
    "min": (_min, (1, None)), "max": (_max, (1, None)), "round": (round_half_away, (1, 2)),
    "abs": (_abs, (1, 1)), "if": (_if, (3, 3)), "coalesce": (_coalesce, (1, None)),
    "years_between": (_years_between, (2, 2)), "days_between": (_days_between, (2, 2)),
}


def _get(value, part):
    if isinstance(value, list):  # a repeating group (or a group within one): one value per row
        return [_get(row, part) for row in value]
    if isinstance(value, dict):
        return value.get(part)
    return None


def _lookup(data, path):
    value = data
    for part in path:
        value = _get(value, part)
    return value


def _is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


_ORDER = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_ARITH = {"+": operator.add, "-": operator.sub, "*": operator.mul}


def _compile(node):
    """A function of the document computing ``node``: the tree is walked once, when the expression
    is first evaluated, not on every evaluation (calculations run on every save)."""
    kind = node[0]
    if kind == "lit":
        value = node[1]
        return lambda data: value
    if kind == "name":
        path = node[1]
        if len(path) == 1:
            key = path[0]
            return lambda data: _get(data, key)
        return lambda data: _lookup(data, path)
    if kind == "neg":
        inner = _compile(node[1])

        def negate(data):
            value = inner(data)
            return -value if _is_num(value) else None
        return negate
    if kind == "not":
        inner = _compile(node[1])

        def invert(data):
            value = inner(data)
            return None if value is None else not value
        return invert
    if kind in ("and", "or"):
        left, right, decisive = _compile(node[1]), _compile(node[2]), kind == "or"

        def logical(data):
            a = left(data)
            if a is decisive:
                return decisive
            b = right(data)
            if b is decisive:
                return decisive
            if a is None or b is None:
                return None
            return bool(a or b) if decisive else bool(a and b)
        return logical
    if kind == "arith":
        op, left, right = node[1], _compile(node[2]), _compile(node[3])
        apply = _ARITH.get(op)

        def arith(data):
            a, b = left(data), right(data)
            if a is None or b is None:
                return None
            if not (_is_num(a) and _is_num(b)):
                raise TypeError(f"cannot apply {op} to {a!r} and {b!r}")
            if apply is not None:
                return apply(a, b)
            return None if b == 0 else a / b
        return arith
    if kind == "cmp":
        op, left, right = node[1], _compile(node[2]), _compile(node[3])
        if op in ("==", "!="):
            equal = op == "=="

            def same(data):
                a, b = left(data), right(data)
                # JSON semantics: true is not 1 and false is not 0
                return (a == b and isinstance(a, bool) == isinstance(b, bool)) == equal
            return same
        order = _ORDER[op]

        def compare(data):
            a, b = left(data), right(data)
            if a is None or b is None:
                return None
            if _is_num(a) != _is_num(b):
                raise TypeError(f"cannot compare {a!r} with {b!r}")
            return order(a, b)
        return compare
    if kind == "call":
        name, args = node[1], tuple(_compile(a) for a in node[2])
        if name == "if":
            cond, then, otherwise = args

            def choose(data):
                return then(data) if cond(data) is True else otherwise(data)
            return choose
        function = FUNCTIONS[name][0]
        return lambda data: function(*[a(data) for a in args])
    raise AssertionError(f"unknown node {kind}")


@dataclasses.dataclass(frozen=True)
class Expression:
    """A parsed expression: its source, its tree, and the field paths it reads."""

    source: str
    tree: tuple

    @property
    def names(self):
        """The field paths the expression reads, as tuples (``("tubes", "volume")``)."""
        found = []

        def walk(node):
            if node[0] == "name":
                if node[1] not in found:
                    found.append(node[1])
            elif node[0] in ("neg", "not"):
                walk(node[1])
            elif node[0] in ("and", "or"):
                walk(node[1])
                walk(node[2])
            elif node[0] in ("arith", "cmp"):
                walk(node[2])
                walk(node[3])
            elif node[0] == "call":
                for arg in node[2]:
                    walk(arg)

        walk(self.tree)
        return found

    @functools.cached_property
    def _compiled(self):
        return _compile(self.tree)

    def evaluate(self, data):
        """Evaluate over a form document; a type mismatch or impossible operation gives None."""
        try:
            return self._compiled(data)
        except (TypeError, ValueError, decimal.InvalidOperation, OverflowError):
            return None


def parse(source):
    """Parse ``source`` into an Expression or raise ExpressionError saying where and why."""
    if not isinstance(source, str) or not source.strip():
        raise ExpressionError("the expression is empty")
    if len(source) > MAX_LENGTH:
        raise ExpressionError(f"the expression is longer than {MAX_LENGTH} characters")
    tree = _Parser(source).parse()
    if _tree_depth(tree) > MAX_TREE_DEPTH:
        raise ExpressionError(f"expression nested too deeply (more than {MAX_TREE_DEPTH} levels)")
    return Expression(source, tree)


def _children(node):
    kind = node[0]
    if kind in ("neg", "not"):
        return (node[1],)
    if kind in ("and", "or"):
        return node[1:3]
    if kind in ("arith", "cmp"):
        return node[2:4]
    if kind == "call":
        return node[2]
    return ()


def _tree_depth(tree):
    """How deeply ``tree`` nests, found without recursion."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in _children(node))
    return deepest
