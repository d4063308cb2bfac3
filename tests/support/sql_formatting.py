"""Finds SQL assembled by string formatting from values that are not constants of the code.

A call that runs or wraps SQL (`execute`, `exec_driver_sql`, `sa.text`, DuckDB's `sql`,
`pd.read_sql`, `copy`, …) whose statement is an f-string, a `%` format, a `.format()` or a
concatenation is flagged unless every interpolated expression is *safe*:
- a literal, or a name in CAPITALS (a constant of the code, by the project's convention),
  or a name defined at module level or in the function only from safe expressions;
- a loop or comprehension variable over something safe (`for table in PERIOD_TABLES`);
- a call of a helper that validates or quotes an identifier (`SAFE_HELPERS`);
- `", ".join(...)`, an f-string, a concatenation, a subscript, a method like `.items()`
  of safe parts.
A statement held in a variable is followed to the variable's assignments in the function.
A function of the scanned tree that hands one of its parameters on as the statement of such a
call (`def _comment(conn, statement): conn.exec_driver_sql(statement…)`) runs SQL too: its
callers' statements at that position are checked the same way.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

SQL_CALLS = {"execute", "executemany", "exec_driver_sql", "text", "sql", "query", "read_sql", "read_sql_query",
             "copy"}
# functions that return a validated, quoted identifier (or raise): their result may be formatted into SQL
SAFE_HELPERS = {
    "quote_identifier",  # tthc/sqlsafe.py: plain identifier checked, quoted by the dialect's preparer
    "quote_qualified",   # tthc/sqlsafe.py: schema.table, each part as above
    "_role",             # warehouse/roles.py: role names checked against ^[a-z_][a-z0-9_]{0,62}$
}
SAFE_METHODS = {"items", "keys", "values", "upper", "lower", "strip", "join"}


@dataclass(frozen=True)
class Offender:
    path: str
    function: str
    line: int
    code: str

    @property
    def key(self) -> str:
        return f"{self.path}::{self.function}"


def _call_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _is_formatted(node: ast.expr) -> bool:
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.FormattedValue) for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mod, ast.Add)):
        return True
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        return True
    return False


class _Scope:
    def __init__(self, safe_names: set[str]):
        self.safe = set(safe_names)

    def is_safe(self, node: ast.expr | None, bound: frozenset[str] = frozenset()) -> bool:
        if node is None or isinstance(node, ast.Constant):
            return True
        if isinstance(node, ast.Name):
            return node.id.isupper() or node.id in self.safe or node.id in bound
        if isinstance(node, ast.Attribute):
            return node.attr.isupper() or (isinstance(node.value, ast.Name) and node.value.id.isupper())
        if isinstance(node, ast.JoinedStr):
            return all(self.is_safe(v.value if isinstance(v, ast.FormattedValue) else v, bound) for v in node.values)
        if isinstance(node, ast.FormattedValue):
            return self.is_safe(node.value, bound)
        if isinstance(node, ast.BinOp):
            return self.is_safe(node.left, bound) and self.is_safe(node.right, bound)
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            return all(self.is_safe(e, bound) for e in node.elts)
        if isinstance(node, ast.Starred):
            return self.is_safe(node.value, bound)
        if isinstance(node, ast.Subscript):
            return self.is_safe(node.value, bound)
        if isinstance(node, ast.IfExp):
            return self.is_safe(node.body, bound) and self.is_safe(node.orelse, bound)
        if isinstance(node, (ast.GeneratorExp, ast.ListComp, ast.SetComp)):
            inner = set(bound)
            for gen in node.generators:  # variables over something unsafe stay unsafe (a helper may quote them)
                if self.is_safe(gen.iter, frozenset(inner)):
                    inner |= {n.id for n in ast.walk(gen.target) if isinstance(n, ast.Name)}
            return self.is_safe(node.elt, frozenset(inner))
        if isinstance(node, ast.Call):
            name = _call_name(node.func)
            if name in SAFE_HELPERS:
                return True
            if isinstance(node.func, ast.Attribute) and name in SAFE_METHODS:
                return self.is_safe(node.func.value, bound) and all(self.is_safe(a, bound) for a in node.args)
            if name in ("sorted", "list", "tuple", "enumerate", "zip", "reversed"):
                return all(self.is_safe(a, bound) for a in node.args)
            return False
        return False


def _assignments(body: list[ast.stmt]) -> dict[str, list[ast.expr | None]]:
    """Every value assigned to each plain name in these statements (loop targets map to the
    loop's iterable wrapped as a marker, and are safe when the iterable is)."""
    found: dict[str, list] = {}

    def visit(node: ast.AST) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            return
        if isinstance(node, ast.Assign):
            for target in node.targets:
                for n in ast.walk(target):
                    if isinstance(n, ast.Name):
                        found.setdefault(n.id, []).append(node.value if isinstance(target, ast.Name) else ("iter", node.value))
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and isinstance(node.target, ast.Name):
            found.setdefault(node.target.id, []).append(node.value)
        elif isinstance(node, (ast.For, ast.AsyncFor)):
            for n in ast.walk(node.target):
                if isinstance(n, ast.Name):
                    found.setdefault(n.id, []).append(("iter", node.iter))
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                if item.optional_vars is not None:
                    for n in ast.walk(item.optional_vars):
                        if isinstance(n, ast.Name):
                            found.setdefault(n.id, []).append(("unknown", None))
        for child in ast.iter_child_nodes(node):
            visit(child)

    for stmt in body:
        visit(stmt)
    return found


def _safe_names(assigned: dict[str, list], inherited: set[str], params: set[str]) -> set[str]:
    safe = set(inherited) - params
    changed = True
    while changed:
        changed = False
        scope = _Scope(safe)
        for name, values in assigned.items():
            if name in safe or name in params:
                continue
            ok = True
            for value in values:
                if isinstance(value, tuple):
                    kind, expr = value
                    ok = kind == "iter" and scope.is_safe(expr)
                else:
                    ok = scope.is_safe(value)
                if not ok:
                    break
            if ok:
                safe.add(name)
                changed = True
    return safe


def _statement_of(call: ast.Call, wrappers: dict[str, int]) -> ast.expr | None:
    """The statement a call runs: the first argument of an SQL call, or a wrapper's statement parameter."""
    name = _call_name(call.func)
    if name in SQL_CALLS and call.args:
        return call.args[0]
    if name in wrappers and len(call.args) > wrappers[name]:
        return call.args[wrappers[name]]
    return None


def _passed_on(node: ast.expr | None, params: list[str]) -> str | None:
    """The parameter an expression hands on unchanged or through its own methods (`statement.replace(…)`)."""
    if isinstance(node, ast.Name) and node.id in params:
        return node.id
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return _passed_on(node.func.value, params)
    if isinstance(node, ast.IfExp):
        return _passed_on(node.body, params) or _passed_on(node.orelse, params)
    return None


def sql_wrappers(trees: list[ast.Module]) -> dict[str, int]:
    """Function name → the position of the parameter it runs as SQL, over these modules."""
    found: dict[str, int] = {}
    for tree in trees:
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            params = [a.arg for a in [*fn.args.posonlyargs, *fn.args.args]]
            for node in ast.walk(fn):
                if isinstance(node, ast.Call) and _call_name(node.func) in SQL_CALLS and node.args:
                    param = _passed_on(node.args[0], params)
                    if param is not None:
                        found[fn.name] = params.index(param)
    return found


def check_file(path: Path, root: Path, wrappers: dict[str, int] | None = None) -> list[Offender]:
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source, filename=str(path))
    wrappers = wrappers if wrappers is not None else sql_wrappers([tree])
    module_safe = _safe_names(_assignments([s for s in tree.body if not isinstance(
        s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]), set(), set())
    offenders: list[Offender] = []
    rel = str(path.relative_to(root))

    def check_function(fn: ast.FunctionDef | ast.AsyncFunctionDef | ast.Module, qualname: str, inherited: set[str]):
        body = fn.body
        params = set()
        if not isinstance(fn, ast.Module):
            params = {a.arg for a in [*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs]}
            params |= {a.arg for a in (fn.args.vararg, fn.args.kwarg) if a is not None}
        assigned = _assignments(body)
        safe = _safe_names(assigned, inherited, params)
        scope = _Scope(safe)

        def visit(node: ast.AST) -> None:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                check_function(node, f"{qualname}.{node.name}" if qualname else node.name, safe)
                return
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        check_function(item, f"{node.name}.{item.name}", safe)
                return
            statement = _statement_of(node, wrappers) if isinstance(node, ast.Call) else None
            if statement is not None:
                candidates = [statement]
                if isinstance(statement, ast.Name) and statement.id not in safe:
                    candidates = [v for v in assigned.get(statement.id, []) if not isinstance(v, tuple)]
                for candidate in candidates:
                    if _is_formatted(candidate) and not _formatted_parts_safe(candidate, scope):
                        offenders.append(Offender(rel, qualname or "<module>", node.lineno,
                                                  ast.get_source_segment(source, node)[:120]))
                        break
            for child in ast.iter_child_nodes(node):
                visit(child)

        for stmt in body:
            visit(stmt)

    check_function(tree, "", module_safe)
    return offenders


def _formatted_parts_safe(node: ast.expr, scope: _Scope) -> bool:
    if isinstance(node, ast.Call):  # "…".format(...)
        return scope.is_safe(node.func.value) and all(scope.is_safe(a) for a in node.args) and \
            all(scope.is_safe(k.value) for k in node.keywords)
    return scope.is_safe(node)


def project_files(root: Path) -> list[Path]:
    skip = {".venv", "tests", "node_modules", ".git", "var", "build"}
    return sorted(p for p in root.rglob("*.py") if not skip & set(p.relative_to(root).parts[:-1]) and
                  not p.relative_to(root).parts[0].startswith("."))


def scan(root: Path) -> list[Offender]:
    paths = project_files(root)
    wrappers = sql_wrappers([ast.parse(p.read_text(encoding="utf-8"), filename=str(p)) for p in paths])
    return [o for path in paths for o in check_file(path, root, wrappers)]


if __name__ == "__main__":
    import sys

    here = Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    for o in scan(here):
        print(f"{o.path}:{o.line} {o.function}: {o.code}")
