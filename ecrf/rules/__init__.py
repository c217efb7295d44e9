"""[3] The rule language of study files: expressions for calculations and soft checks. Never eval."""
from ecrf.rules.expression import Expression, ExpressionError, parse

__all__ = ["Expression", "ExpressionError", "parse"]
