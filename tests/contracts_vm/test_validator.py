"""Deploy-time rejection: everything off the allow-list is a CompileError naming the line
and the construct (issue 4: isolation by construction, determinism by construction)."""

from __future__ import annotations

import pytest

from contracts_vm import CompileError, compile

REJECTED = {
    "import": ("import os", "Import"),
    "from-import": ("from os import path", "ImportFrom"),
    "dunder import": ("def f():\n    return __import__('os')", "Name"),
    "attribute walk": ("def f():\n    return ().__class__", "Attribute"),
    "attribute on value": ("def f(x):\n    return x.__class__.__mro__", "Attribute"),
    "function globals": ("def f():\n    return f.__globals__", "Attribute"),
    "format method": ("def f():\n    return '{0.__class__}'.format(1)", "Attribute"),
    "f-string": ("def f(x):\n    return f'{x}'", "JoinedStr"),
    "unicode identifier": ("def f():\n    \uff3f\uff3fclass\uff3f\uff3f = 1", "Source"),
    "unicode in string": ("def f():\n    return '\u00e9'", "Source"),
    "lambda": ("def f():\n    g = lambda: 1", "Lambda"),
    "class": ("class A:\n    pass", "ClassDef"),
    "generator expression": ("def f(x):\n    return sum(i for i in x)", "GeneratorExp"),
    "yield": ("def f():\n    yield 1", "Yield"),
    "try": ("def f():\n    try:\n        pass\n    except Exception:\n        pass", "Try"),
    "raise": ("def f():\n    raise ValueError", "Raise"),
    "with": ("def f(x):\n    with x:\n        pass", "With"),
    "global": ("def f():\n    global y", "Global"),
    "nested def": ("def f():\n    def g():\n        pass", "FunctionDef"),
    "decorator": ("def d(x):\n    return x\n@d\ndef f():\n    pass", "FunctionDef"),
    "default argument": ("def f(x=[]):\n    return x", "FunctionDef"),
    "varargs": ("def f(*xs):\n    return xs", "FunctionDef"),
    "annotation": ("def f(x: int):\n    return x", "arg"),
    "float literal": ("def f():\n    return 1.5", "Constant"),
    "complex literal": ("def f():\n    return 1j", "Constant"),
    "bytes literal": ("def f():\n    return b'x'", "Constant"),
    "true division": ("def f(a, b):\n    return a / b", "BinOp"),
    "bitwise shift": ("def f(a):\n    return a << 1000", "BinOp"),
    "set literal": ("def f():\n    return {1, 2}", "Set"),
    "set comprehension": ("def f(x):\n    return {i for i in x}", "SetComp"),
    "hash builtin": ("def f(x):\n    return hash(x)", "Call"),
    "id builtin": ("def f(x):\n    return id(x)", "Call"),
    "eval": ("def f(x):\n    return eval(x)", "Call"),
    "getattr": ("def f(x):\n    return getattr(x, 'y')", "Call"),
    "type builtin": ("def f(x):\n    return type(x)", "Call"),
    "function as value": ("def f():\n    g = len\n    return g", "Name"),
    "own function as value": ("def f():\n    return f", "Name"),
    "call of a value": ("def f(x):\n    return x()", "Call"),
    "underscore name": ("def f():\n    _x = 1\n    return _x", "Name"),
    "dunder name": ("def f():\n    return __builtins__", "Name"),
    "walrus": ("def f(x):\n    return (y := x)", "NamedExpr"),
    "starred call": ("def f(x):\n    return max(*x)", "Starred"),
    "del": ("def f(x):\n    del x", "Delete"),
    "assert": ("def f(x):\n    assert x", "Assert"),
    "async def": ("async def f():\n    pass", "AsyncFunctionDef"),
    "is with non-None": ("def f(a, b):\n    return a is b", "Compare"),
    "keyword argument": ("def f(x):\n    return sorted(x, key=len)", "Call"),
    "chained call compare": ("def f(a):\n    return 1 < len(a) < 3", "Compare"),
    "unknown method": ("def f(x):\n    return x.format(1)", "Attribute"),
    "undefined name": ("def f():\n    return print", "Name"),
    "module-level code": ("print(1)", "Expr"),
    "builtin shadowing": ("def f():\n    len = 3\n    return len", "FunctionDef"),
    "slice assignment": ("def f(x):\n    x[0:1] = [2]", "Subscript"),
    "match": ("def f(x):\n    match x:\n        case 1:\n            pass", "Match"),
    "ellipsis": ("def f():\n    return ...", "Constant"),
    "huge literal": ("X = " + "9" * 400, "Constant"),
    "bool dict key": ("def f():\n    return {True: 1}", "Dict"),
}


@pytest.mark.parametrize("case", sorted(REJECTED))
def test_rejected_at_deploy_with_line_and_construct(case: str) -> None:
    source, construct = REJECTED[case]
    with pytest.raises(CompileError) as info:
        compile(source)
    assert info.value.construct == construct, info.value
    assert info.value.line >= 0


def test_error_names_the_line() -> None:
    with pytest.raises(CompileError) as info:
        compile("def f(x):\n    y = x\n    return y.__class__\n")
    assert info.value.line == 3
    assert "line 3" in str(info.value)


def test_deep_nesting_is_rejected_not_a_crash() -> None:
    deep = "def f(x):\n    return " + "[" * 150 + "x" + "]" * 150 + "\n"
    with pytest.raises(CompileError):
        compile(deep)
    chain = "def f(x):\n    return x" + " + x" * 5000 + "\n"
    with pytest.raises(CompileError):
        compile(chain)
    parens = "def f(x):\n    return " + "(" * 1000 + "x" + ")" * 1000 + "\n"
    with pytest.raises(CompileError):  # the parser's own limit, reported as a CompileError
        compile(parens)


def test_oversized_source_is_rejected() -> None:
    with pytest.raises(CompileError):
        compile("X = 1\n" * 20_000)


def test_syntax_error_is_a_compile_error() -> None:
    with pytest.raises(CompileError) as info:
        compile("def f(:\n")
    assert info.value.construct == "SyntaxError"


def test_program_is_identified_by_sha256_of_source() -> None:
    import hashlib

    source = "def f():\n    return 1\n"
    program = compile(source)
    assert program.code_hash == hashlib.sha256(source.encode()).digest()
    assert program.functions == ("f",)
    with pytest.raises(AttributeError):
        program.source = "x"  # type: ignore[misc]
