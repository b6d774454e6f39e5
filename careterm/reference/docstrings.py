"""Attribute docstrings (a string literal right under a field) read from a class's source.

Pydantic keeps them only with `use_attribute_docstrings`; the reference reads them itself so
the models need nothing but the docstrings.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from functools import cache


@cache
def _own_docs(cls: type) -> dict[str, str]:
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    tree = ast.parse(source)
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    docs: dict[str, str] = {}
    for stmt, nxt in zip(body, body[1:], strict=False):
        if (
            isinstance(stmt, ast.AnnAssign)
            and isinstance(stmt.target, ast.Name)
            and isinstance(nxt, ast.Expr)
            and isinstance(nxt.value, ast.Constant)
            and isinstance(nxt.value.value, str)
        ):
            docs[stmt.target.id] = inspect.cleandoc(nxt.value.value)
    return docs


def attribute_docs(cls: type) -> dict[str, str]:
    """Field name -> its docstring, the subclass's winning over its bases'."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is object:
            continue
        docs.update(_own_docs(klass))
    return docs


def one_line(text: str) -> str:
    """A docstring as one Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")
