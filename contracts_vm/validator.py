"""Deploy-time validation: a contract's AST is accepted only if every node is on an allow-list.

Isolation is by construction. After validation the program contains no attribute access
except calls of allowed method names (rewritten to VM helpers by codegen.py), no name
starting with `_`, no non-ASCII character anywhere in the source (so no NFKC-normalised
look-alike identifiers), no classes, lambdas, generators, imports, try/raise, with,
global/nonlocal, decorators, annotations, f-strings, floats or sets. A function or builtin
name may only appear as the callee of a call, so no host object (function, module, frame)
can ever become a value inside contract code. Every rejection is a CompileError that
names the line and the construct.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass

from .errors import CompileError
from .money import CALENDAR_HELPERS
from .schedule import Limits

IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
LONG_DIGITS = re.compile(r"[0-9]{300,}")

BUILTINS = frozenset(
    {
        "len",
        "range",
        "min",
        "max",
        "sum",
        "abs",
        "sorted",
        "enumerate",
        "zip",
        "list",
        "dict",
        "str",
        "int",
        "bool",
        "reversed",
        "any",
        "all",
        "divmod",
        "fail",
        "mul_div",
        "allocate",
        *CALENDAR_HELPERS,
        "param",
        "aggregate",
        "storage_get",
        "storage_set",
        "emit",
    }
)
METHODS = frozenset(
    {
        "get",
        "keys",
        "values",
        "items",
        "pop",
        "append",
        "extend",
        "insert",
        "index",
        "count",
        "copy",
        "startswith",
        "endswith",
        "find",
        "replace",
        "split",
        "join",
        "strip",
        "lower",
        "upper",
        "isdigit",
    }
)
KEYWORDS_ALLOWED = {"sorted": frozenset({"reverse"})}

_BINOPS = (ast.Add, ast.Sub, ast.Mult, ast.FloorDiv, ast.Mod, ast.Pow)
_CMPOPS = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn)
_UNOPS = (ast.USub, ast.UAdd, ast.Not)


@dataclass(frozen=True, slots=True)
class Checked:
    """A validated module: its tree and the names of its top-level functions."""

    tree: ast.Module
    functions: tuple[str, ...]


def reject(node: ast.AST, reason: str) -> CompileError:
    return CompileError(reason, getattr(node, "lineno", 0), type(node).__name__)


def validate(source: str, limits: Limits) -> Checked:
    if len(source.encode("utf-8")) > limits.source_bytes_max:
        raise CompileError("source too large", 0, "Module")
    for lineno, line in enumerate(source.splitlines(), 1):
        if not line.isascii():
            raise CompileError("non-ASCII character in source", lineno, "Source")
        if LONG_DIGITS.search(line):
            raise CompileError("digit run too long", lineno, "Constant")
    try:
        tree = ast.parse(source, mode="exec")
    except SyntaxError as exc:
        raise CompileError(f"syntax error: {exc.msg}", exc.lineno or 0, "SyntaxError") from None
    except (RecursionError, MemoryError, ValueError):
        raise CompileError("source too complex", 0, "Module") from None
    count = sum(1 for _ in ast.walk(tree))
    if count > limits.ast_nodes_max:
        raise CompileError("too many AST nodes", 0, "Module")
    return _Validator(tree, limits).run()


def _walk_assigned(target: ast.expr) -> Iterator[ast.Name]:
    if isinstance(target, ast.Name):
        yield target
    elif isinstance(target, (ast.Tuple, ast.List)):
        for elt in target.elts:
            yield from _walk_assigned(elt)


class _Validator:
    def __init__(self, tree: ast.Module, limits: Limits) -> None:
        self.tree = tree
        self.limits = limits
        self.functions: dict[str, ast.FunctionDef] = {}
        self.globals: set[str] = set()
        self.locals: set[str] = set()

    def run(self) -> Checked:
        for stmt in self.tree.body:
            if isinstance(stmt, ast.FunctionDef):
                self.check_name(stmt, stmt.name)
                if stmt.name in self.functions or stmt.name in BUILTINS:
                    raise reject(stmt, f"function name {stmt.name!r} already defined")
                self.functions[stmt.name] = stmt
            elif isinstance(stmt, ast.Assign):
                for target in stmt.targets:
                    if not isinstance(target, ast.Name):
                        raise reject(stmt, "module level assigns only plain names")
                    self.globals.add(target.id)
            elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
                pass
            else:
                raise reject(stmt, "only def, NAME = expr and docstrings at module level")
        clash = self.globals & (set(self.functions) | BUILTINS)
        if clash:
            raise CompileError(f"global {sorted(clash)[0]!r} shadows a function", 0, "Assign")
        for stmt in self.tree.body:
            if isinstance(stmt, ast.FunctionDef):
                self.function(stmt)
            else:
                self.locals = set()
                self.stmt(stmt, 0, in_loop=False)
        return Checked(self.tree, tuple(self.functions))

    def check_name(self, node: ast.AST, name: str) -> None:
        if not IDENT.match(name):
            raise reject(node, f"name {name!r} is not allowed (ASCII, no leading '_')")

    def function(self, fn: ast.FunctionDef) -> None:
        if fn.decorator_list or fn.returns is not None or fn.type_comment:
            raise reject(fn, "decorators and annotations are not allowed")
        a = fn.args
        if a.posonlyargs or a.vararg or a.kwonlyargs or a.kwarg or a.defaults:
            raise reject(fn, "only plain positional parameters are allowed")
        self.locals = set()
        for arg in a.args:
            self.check_name(arg, arg.arg)
            if arg.annotation is not None:
                raise reject(arg, "annotations are not allowed")
            self.locals.add(arg.arg)
        for node in ast.walk(fn):
            if isinstance(node, (ast.Assign, ast.AugAssign, ast.For, ast.comprehension)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    for name in _walk_assigned(target):
                        self.locals.add(name.id)
        bad = self.locals & (set(self.functions) | BUILTINS)
        if bad:
            raise reject(fn, f"{sorted(bad)[0]!r} is a function and cannot be a variable")
        for stmt in fn.body:
            self.stmt(stmt, 1, in_loop=False)

    def block(self, body: list[ast.stmt], depth: int, in_loop: bool) -> None:
        for stmt in body:
            self.stmt(stmt, depth + 1, in_loop)

    def stmt(self, s: ast.stmt, depth: int, in_loop: bool) -> None:
        if depth > self.limits.ast_depth_max:
            raise reject(s, "nesting too deep")
        match s:
            case ast.Return(value=value):
                if value is not None:
                    self.expr(value, depth)
            case ast.Assign(targets=targets, value=value):
                for target in targets:
                    self.target(target, depth)
                self.expr(value, depth)
            case ast.AugAssign(target=target, op=op, value=value):
                if not isinstance(op, _BINOPS):
                    raise reject(s, f"operator {type(op).__name__} is not allowed")
                if isinstance(target, ast.Subscript) and isinstance(target.slice, ast.Slice):
                    raise reject(s, "augmented assignment to a slice")
                self.target(target, depth)
                self.expr(value, depth)
            case ast.For(target=target, iter=it, body=body, orelse=orelse):
                if orelse:
                    raise reject(s, "for/else is not allowed")
                self.target(target, depth, subscript=False)
                self.expr(it, depth)
                self.block(body, depth, in_loop=True)
            case ast.While(test=test, body=body, orelse=orelse):
                if orelse:
                    raise reject(s, "while/else is not allowed")
                self.expr(test, depth)
                self.block(body, depth, in_loop=True)
            case ast.If(test=test, body=body, orelse=orelse):
                self.expr(test, depth)
                self.block(body, depth, in_loop)
                self.block(orelse, depth, in_loop)
            case ast.Expr(value=value):
                self.expr(value, depth)
            case ast.Pass():
                pass
            case ast.Break() | ast.Continue():
                if not in_loop:
                    raise reject(s, "break/continue outside a loop")
            case _:
                raise reject(s, "statement is not allowed")

    def target(self, t: ast.expr, depth: int, subscript: bool = True) -> None:
        if isinstance(t, ast.Name):
            self.check_name(t, t.id)
        elif isinstance(t, (ast.Tuple, ast.List)):
            for elt in t.elts:
                if isinstance(elt, ast.Starred):
                    raise reject(elt, "starred assignment is not allowed")
                self.target(elt, depth + 1, subscript=False)
        elif isinstance(t, ast.Subscript) and subscript:
            if isinstance(t.slice, ast.Slice):
                raise reject(t, "assignment to a slice is not allowed")
            self.expr(t.value, depth + 1)
            self.subscript_index(t.slice, depth + 1)
        else:
            raise reject(t, "assignment target is not allowed")

    def subscript_index(self, sl: ast.expr, depth: int) -> None:
        if isinstance(sl, ast.Slice):
            for part in (sl.lower, sl.upper, sl.step):
                if part is not None:
                    self.expr(part, depth + 1)
        else:
            self.expr(sl, depth + 1)

    def expr(self, e: ast.expr, depth: int) -> None:
        if depth > self.limits.ast_depth_max:
            raise reject(e, "expression nesting too deep")
        d = depth + 1
        match e:
            case ast.Constant(value=value):
                self.constant(e, value)
            case ast.Name(id=name):
                self.check_name(e, name)
                if name in self.functions or name in BUILTINS:
                    raise reject(e, f"function {name!r} can only be called")
                if name not in self.locals and name not in self.globals:
                    raise reject(e, f"name {name!r} is not defined")
            case ast.BinOp(left=left, op=op, right=right):
                if not isinstance(op, _BINOPS):
                    raise reject(e, f"operator {type(op).__name__} is not allowed")
                self.expr(left, d)
                self.expr(right, d)
            case ast.UnaryOp(op=op, operand=operand):
                if not isinstance(op, _UNOPS):
                    raise reject(e, f"operator {type(op).__name__} is not allowed")
                self.expr(operand, d)
            case ast.BoolOp(values=values):
                for v in values:
                    self.expr(v, d)
            case ast.Compare():
                self.compare(e, d)
            case ast.IfExp(test=test, body=body, orelse=orelse):
                for part in (test, body, orelse):
                    self.expr(part, d)
            case ast.List(elts=elts) | ast.Tuple(elts=elts):
                for elt in elts:
                    if isinstance(elt, ast.Starred):
                        raise reject(elt, "starred expressions are not allowed")
                    self.expr(elt, d)
            case ast.Dict(keys=keys, values=values):
                for k in keys:
                    if k is None:
                        raise reject(e, "dict unpacking is not allowed")
                    self.expr(k, d)
                for v in values:
                    self.expr(v, d)
            case ast.ListComp(elt=elt, generators=gens):
                self.comprehension(gens, d)
                self.expr(elt, d)
            case ast.DictComp(key=key, value=value, generators=gens):
                self.comprehension(gens, d)
                self.expr(key, d)
                self.expr(value, d)
            case ast.Subscript(value=value, slice=sl):
                self.expr(value, d)
                self.subscript_index(sl, d)
            case ast.Call():
                self.call(e, d)
            case _:
                raise reject(e, "expression is not allowed")

    def constant(self, node: ast.AST, value: object) -> None:
        if value is None or isinstance(value, bool):
            return
        if isinstance(value, int):
            if value.bit_length() >= self.limits.int_bits_max:
                raise reject(node, "integer literal too large")
            return
        if isinstance(value, str):
            if len(value) > self.limits.str_len_max:
                raise reject(node, "string literal too long")
            return
        raise reject(node, f"{type(value).__name__} literals are not allowed")

    def compare(self, e: ast.Compare, d: int) -> None:
        operands = [e.left, *e.comparators]
        for i, op in enumerate(e.ops):
            if isinstance(op, (ast.Is, ast.IsNot)):
                right = operands[i + 1]
                if not (isinstance(right, ast.Constant) and right.value is None):
                    raise reject(e, "'is' is only allowed as 'is None' / 'is not None'")
            elif not isinstance(op, _CMPOPS):
                raise reject(e, f"comparison {type(op).__name__} is not allowed")
        for middle in operands[1:-1]:
            if not isinstance(middle, (ast.Name, ast.Constant)):
                raise reject(e, "chained comparison operands must be names or constants")
        for operand in operands:
            self.expr(operand, d)

    def comprehension(self, gens: list[ast.comprehension], d: int) -> None:
        for gen in gens:
            if gen.is_async:
                raise reject(gen.target, "async comprehension is not allowed")
            self.target(gen.target, d, subscript=False)
            self.expr(gen.iter, d)
            for cond in gen.ifs:
                self.expr(cond, d)

    def call(self, e: ast.Call, d: int) -> None:
        func = e.func
        for arg in e.args:
            if isinstance(arg, ast.Starred):
                raise reject(arg, "starred arguments are not allowed")
            self.expr(arg, d)
        if isinstance(func, ast.Name):
            name = func.id
            self.check_name(func, name)
            if name not in self.functions and name not in BUILTINS:
                raise reject(e, f"call of unknown function {name!r}")
        elif isinstance(func, ast.Attribute):
            if func.attr not in METHODS:
                raise reject(func, f"method {func.attr!r} is not allowed")
            self.expr(func.value, d)
            name = ""
        else:
            raise reject(e, "only named functions and allowed methods can be called")
        allowed = KEYWORDS_ALLOWED.get(name, frozenset())
        for kw in e.keywords:
            if kw.arg is None or kw.arg not in allowed:
                raise reject(e, f"keyword argument {kw.arg!r} is not allowed")
            self.expr(kw.value, d)
