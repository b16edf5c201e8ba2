"""Codegen: rewrite a validated contract AST into metered Python and compile it.

Why generated code, not an interpreter: performance.md measures a tree-walking interpreter
at ~33x CPython and closure compilation at ~10x; compiling the validated AST back to
CPython bytecode with injected metering runs within a small factor of native. The price
is that isolation must be airtight, and it is by construction:
- validator.py has already rejected every construct off the allow-list (no attributes, no
  `_` names, no function values, ASCII-only source);
- this module emits only: the contract's own names, constants and control flow; calls of
  the contract's own functions; and calls of VM helpers (names starting with `_`, which
  contract code cannot spell). Every operator whose cost or result size depends on its
  operands (+ - * // % **, ordering and equality of non-constant operands, `in`,
  slicing, subscript assignment, dict keys, literals) becomes a helper call;
- the code runs with an empty `__builtins__`, so nothing outside the namespace exists.
Metering: each straight-line block is charged its static cost (schedule.node per AST
node, schedule.call per call) when entered, a loop-free `if` inside it at the cost of its
dearer branch; loop bodies and comprehension iterations are charged per iteration;
function entry checks the call depth. Helpers charge by size. Any such static policy is
deterministic; this one keeps the injected checks off the straight-line path.
"""

from __future__ import annotations

import ast
from types import CodeType

from .errors import CompileError
from .schedule import DEFAULT_LIMITS, DEFAULT_SCHEDULE
from .validator import BUILTINS, Checked

S = DEFAULT_SCHEDULE
FILENAME = "<contract>"
_BINOP_HELPER = {
    ast.Add: "_add", ast.Sub: "_sub", ast.Mult: "_mul", ast.FloorDiv: "_fdiv",
    ast.Mod: "_mod", ast.Pow: "_pow",
}
_CMP_HELPER = {
    ast.Eq: "_eq", ast.NotEq: "_ne", ast.Lt: "_lt", ast.LtE: "_le", ast.Gt: "_gt",
    ast.GtE: "_ge", ast.In: "_in", ast.NotIn: "_nin",
}


_HELPER_NODES = (ast.BinOp, ast.Compare, ast.List, ast.Tuple, ast.Dict, ast.ListComp,
                 ast.DictComp, ast.AugAssign)


def static_cost(node: ast.AST) -> int:
    cost = 0
    for n in ast.walk(node):
        if isinstance(n, (ast.expr, ast.stmt)):
            cost += S.node
            if isinstance(n, ast.Call):
                cost += S.call
            elif isinstance(n, _HELPER_NODES) or (
                isinstance(n, ast.Subscript)
                and (isinstance(n.slice, ast.Slice) or isinstance(n.ctx, ast.Store))
            ):
                cost += S.helper
    return cost


def header_cost(s: ast.stmt) -> int:
    match s:
        case ast.If(test=t) | ast.While(test=t):
            return S.node + static_cost(t)
        case ast.For(target=target, iter=it):
            return S.node + static_cost(target) + static_cost(it)
    return static_cost(s)


def is_constant(e: ast.expr) -> bool:
    if isinstance(e, ast.UnaryOp) and isinstance(e.op, ast.USub):
        return isinstance(e.operand, ast.Constant) and type(e.operand.value) is int
    return isinstance(e, ast.Constant)


def has_loop(stmts: list[ast.stmt]) -> bool:
    return any(isinstance(n, (ast.For, ast.While)) for s in stmts for n in ast.walk(s))


def block_cost(stmts: list[ast.stmt]) -> int:
    """Static gas of a straight-line block. A loop-free `if` is folded into it at the
    cost of its dearer branch, so its branches need no charge of their own."""
    cost = 0
    for s in stmts:
        cost += header_cost(s)
        if isinstance(s, ast.If) and not has_loop([s]):
            cost += max(block_cost(s.body), block_cost(s.orelse))
    return cost


def name(ident: str) -> ast.Name:
    return ast.Name(id=ident, ctx=ast.Load())


def call(helper: str, *args: ast.expr) -> ast.Call:
    return ast.Call(func=name(helper), args=[name("_M"), *args], keywords=[])


def charge(cost: int) -> list[ast.stmt]:
    gas = ast.Attribute(value=name("_M"), attr="gas", ctx=ast.Store())
    test = ast.Compare(
        left=ast.Attribute(value=name("_M"), attr="gas", ctx=ast.Load()),
        ops=[ast.Lt()], comparators=[ast.Constant(0)],
    )
    oog = ast.Expr(ast.Call(func=name("_oog"), args=[name("_M")], keywords=[]))
    return [
        ast.AugAssign(target=gas, op=ast.Sub(), value=ast.Constant(cost)),
        ast.If(test=test, body=[oog], orelse=[]),
    ]


def generate(checked: Checked) -> CodeType:
    """Module code that only defines functions: the contract's own, plus `_init`, which
    (re)assigns the module-level globals, metered, at the start of every execution."""
    gen = _Gen(set(checked.functions))
    body: list[ast.stmt] = []
    init: list[ast.stmt] = []
    for stmt in checked.tree.body:
        if isinstance(stmt, ast.FunctionDef):
            body.append(gen.function(stmt))
        else:
            init.extend(gen.stmt(stmt))
    names = sorted(global_names(checked))
    init_body: list[ast.stmt] = [ast.Global(names=names)] if names else []
    init_body += charge(block_cost([s for s in checked.tree.body
                                    if not isinstance(s, ast.FunctionDef)]))
    init_body += init
    args = ast.arguments(posonlyargs=[], args=[], vararg=None, kwonlyargs=[],
                         kw_defaults=[], kwarg=None, defaults=[])
    body.append(ast.FunctionDef(name="_init", args=args, body=init_body, decorator_list=[],
                                returns=None, lineno=1, col_offset=0))
    module = ast.Module(body=body, type_ignores=[])
    ast.fix_missing_locations(module)
    return compile(module, FILENAME, "exec", dont_inherit=True, optimize=0)


def global_names(checked: Checked) -> set[str]:
    return {t.id for s in checked.tree.body if isinstance(s, ast.Assign)
            for t in s.targets if isinstance(t, ast.Name)}


class _Gen:
    def __init__(self, functions: set[str]) -> None:
        self.functions = functions

    def function(self, fn: ast.FunctionDef) -> ast.FunctionDef:
        entry = S.function_entry + block_cost(fn.body)
        enter = ast.Expr(call("_enter", ast.Constant(entry)))
        depth = ast.Attribute(value=name("_M"), attr="depth", ctx=ast.Store())
        leave = ast.AugAssign(target=depth, op=ast.Sub(), value=ast.Constant(1))
        body = [s2 for s in fn.body for s2 in self.stmt(s)] or [ast.Pass()]
        guarded = ast.Try(body=body, handlers=[], orelse=[], finalbody=[leave])
        args = ast.arguments(
            posonlyargs=[], args=[ast.arg(arg=a.arg) for a in fn.args.args], vararg=None,
            kwonlyargs=[], kw_defaults=[], kwarg=None, defaults=[],
        )
        new = ast.FunctionDef(name=fn.name, args=args, body=[enter, guarded],
                              decorator_list=[], returns=None)
        return ast.copy_location(new, fn)

    def block(self, stmts: list[ast.stmt], extra: int = 0) -> list[ast.stmt]:
        return charge(extra + block_cost(stmts)) + self.body(stmts)

    def body(self, stmts: list[ast.stmt]) -> list[ast.stmt]:
        return [out for s in stmts for out in self.stmt(s)]

    def stmt(self, s: ast.stmt) -> list[ast.stmt]:
        out = self._stmt(s)
        for o in out:
            ast.copy_location(o, s)
        return out

    def _stmt(self, s: ast.stmt) -> list[ast.stmt]:
        match s:
            case ast.Return(value=value):
                return [ast.Return(None if value is None else self.expr(value))]
            case ast.Assign(targets=targets, value=value):
                if all(not isinstance(t, ast.Subscript) for t in targets):
                    return [ast.Assign(targets=targets, value=self.expr(value))]
                out: list[ast.stmt] = [ast.Assign([self.store("_v")], self.expr(value))]
                for t in targets:
                    if isinstance(t, ast.Subscript):
                        out.append(ast.Expr(call("_setitem", self.expr(t.value),
                                                 self.expr(t.slice), name("_v"))))
                    else:
                        out.append(ast.Assign(targets=[t], value=name("_v")))
                return out
            case ast.AugAssign(target=target, op=op, value=value):
                helper = "_iadd" if isinstance(op, ast.Add) else _BINOP_HELPER[type(op)]
                if isinstance(target, ast.Name):
                    return [ast.Assign([self.store(target.id)],
                                       call(helper, name(target.id), self.expr(value)))]
                assert isinstance(target, ast.Subscript)
                cur = ast.Subscript(value=name("_t1"), slice=name("_t2"), ctx=ast.Load())
                dst = ast.Subscript(value=name("_t1"), slice=name("_t2"), ctx=ast.Store())
                return [
                    ast.Assign([self.store("_t1")], self.expr(target.value)),
                    ast.Assign([self.store("_t2")], self.expr(target.slice)),
                    ast.Assign([dst], call(helper, cur, self.expr(value))),
                ]
            case ast.For(target=target, iter=it, body=body):
                extra = S.node + static_cost(target)
                return [ast.For(target=target, iter=self.expr(it),
                                body=self.block(body, extra), orelse=[])]
            case ast.While(test=test, body=body):
                extra = S.node + static_cost(test)
                return [ast.While(test=self.expr(test), body=self.block(body, extra),
                                  orelse=[])]
            case ast.If(test=test, body=body, orelse=orelse) if not has_loop([s]):
                then = self.body(body) or [ast.Pass()]  # charged by the enclosing block
                return [ast.If(test=self.expr(test), body=then, orelse=self.body(orelse))]
            case ast.If(test=test, body=body, orelse=orelse):
                return [ast.If(test=self.expr(test), body=self.block(body),
                               orelse=self.block(orelse) if orelse else [])]
            case ast.Expr(value=ast.Constant()):
                return []
            case ast.Expr(value=value):
                return [ast.Expr(self.expr(value))]
            case ast.Pass() | ast.Break() | ast.Continue():
                return [s]
        raise CompileError("statement is not allowed", s.lineno, type(s).__name__)

    def store(self, ident: str) -> ast.Name:
        return ast.Name(id=ident, ctx=ast.Store())

    def expr(self, e: ast.expr) -> ast.expr:
        return ast.copy_location(self._expr(e), e)

    def _expr(self, e: ast.expr) -> ast.expr:
        match e:
            case ast.Constant() | ast.Name():
                return e
            case ast.BinOp(left=left, op=op, right=right):
                return call(_BINOP_HELPER[type(op)], self.expr(left), self.expr(right))
            case ast.UnaryOp(op=ast.USub(), operand=operand) if not is_constant(e):
                return call("_neg", self.expr(operand))
            case ast.UnaryOp(op=op, operand=operand):
                return ast.UnaryOp(op=op, operand=self.expr(operand))
            case ast.BoolOp(op=op, values=values):
                return ast.BoolOp(op=op, values=[self.expr(v) for v in values])
            case ast.IfExp(test=test, body=body, orelse=orelse):
                return ast.IfExp(self.expr(test), self.expr(body), self.expr(orelse))
            case ast.Compare():
                return self.compare(e)
            case ast.List(elts=elts) | ast.Tuple(elts=elts):
                lst = ast.List(elts=[self.expr(x) for x in elts], ctx=ast.Load())
                return call("_new", lst)
            case ast.Dict(keys=keys, values=values):
                d = ast.Dict(keys=[self.key(k) for k in keys if k is not None],
                             values=[self.expr(v) for v in values])
                return call("_new", d)
            case ast.ListComp(elt=elt, generators=gens):
                comp = ast.ListComp(elt=self.expr(elt), generators=self.gens(gens, elt))
                return call("_clen", comp)
            case ast.DictComp(key=k, value=v, generators=gens):
                both = ast.Tuple(elts=[k, v], ctx=ast.Load())
                dcomp = ast.DictComp(key=call("_key", self.expr(k)), value=self.expr(v),
                                     generators=self.gens(gens, both))
                return call("_clen", dcomp)
            case ast.Subscript(value=value, slice=ast.Slice(lower=lo, upper=hi, step=st)):
                parts = [ast.Constant(None) if p is None else self.expr(p) for p in (lo, hi, st)]
                return call("_slice", self.expr(value), *parts)
            case ast.Subscript(value=value, slice=sl):
                return ast.Subscript(value=self.expr(value), slice=self.expr(sl), ctx=ast.Load())
            case ast.Call(func=func, args=args, keywords=kws):
                new_args = [self.expr(a) for a in args]
                new_kws = [ast.keyword(arg=k.arg, value=self.expr(k.value)) for k in kws]
                if isinstance(func, ast.Name) and func.id in self.functions:
                    return ast.Call(func=name(func.id), args=new_args, keywords=[])
                if isinstance(func, ast.Name) and func.id in BUILTINS:
                    helper = call("_b_" + func.id, *new_args)
                    helper.keywords = new_kws
                    return helper
                if isinstance(func, ast.Attribute):
                    return call("_m_" + func.attr, self.expr(func.value), *new_args)
        raise CompileError("expression is not allowed", e.lineno, type(e).__name__)

    def key(self, k: ast.expr) -> ast.expr:
        if isinstance(k, ast.Constant):
            v = k.value
            lim = DEFAULT_LIMITS
            if (type(v) is str and len(v) <= lim.dict_str_key_len_max) or (
                type(v) is int and abs(v) < lim.dict_int_key_max
            ):
                return k
            raise CompileError("dict keys are str or int", k.lineno, "Dict")
        return call("_key", self.expr(k))

    def compare(self, e: ast.Compare) -> ast.expr:
        operands = [e.left, *e.comparators]
        parts: list[ast.expr] = []
        for i, op in enumerate(e.ops):
            left, right = operands[i], operands[i + 1]
            if isinstance(op, (ast.Is, ast.IsNot)) or (
                not isinstance(op, (ast.In, ast.NotIn))
                and (is_constant(left) or is_constant(right))
            ):  # against a constant, a native compare costs O(size of the constant)
                parts.append(ast.Compare(self.expr(left), [op], [self.expr(right)]))
            else:
                parts.append(call(_CMP_HELPER[type(op)], self.expr(left), self.expr(right)))
        return parts[0] if len(parts) == 1 else ast.BoolOp(op=ast.And(), values=parts)

    def gens(self, gens: list[ast.comprehension], elt: ast.expr) -> list[ast.comprehension]:
        out = []
        for i, g in enumerate(gens):
            cost = S.node + static_cost(g.target) + sum(static_cost(c) for c in g.ifs)
            if i == len(gens) - 1:
                cost += static_cost(elt)
            ifs = [call("_tick", ast.Constant(cost)), *(self.expr(c) for c in g.ifs)]
            out.append(ast.comprehension(target=g.target, iter=self.expr(g.iter), ifs=ifs,
                                         is_async=0))
        return out
