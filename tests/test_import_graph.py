"""No import cycles among the package's modules.

1. Module-level imports (what runs when a module is imported) must form no cycle at all: a cycle there breaks
   depending on which module is imported first. ``if TYPE_CHECKING:`` blocks never run and are skipped.
2. With the imports inside functions too (deliberate lazy imports of torch, napari, or of a module that is
   only needed late) there must be no cycle either, apart from the known back edges listed below: a cycle
   through lazy imports means two parts of the package depend on each other, so neither can be used, tested
   or replaced alone (issue 18: "no cycle through train").

Importing ``a.b.c`` from outside package ``a.b`` also runs ``a/__init__`` and ``a/b/__init__``, so those are
edges as well; a module's own ancestor packages are not (they are already being imported when it runs).
A failure prints one cycle of each strongly connected component.
"""

from __future__ import annotations

import ast
from pathlib import Path

import napari_vesselgraph

ROOT = Path(napari_vesselgraph.__file__).parent
PKG = "napari_vesselgraph"

# Lazy (function-level) imports allowed to close a cycle, each a back edge ``(importer, imported)`` (without the
# package prefix) with its reason; removed from the graph before looking for cycles. None is left (issue 18 took
# out checkpoints.store -> adapt.translate, settings -> checkpoints.store and inference.distributed -> predict);
# the test fails on any cycle, and on a listed edge that no longer exists (so the list only shrinks).
KNOWN_LAZY_BACK_EDGES: dict[tuple[str, str], str] = {}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = [PKG, *rel.parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.Module, lazy: bool):
    """The import statements of a module: those that run when it is imported, and with ``lazy`` those inside
    functions too. ``if TYPE_CHECKING:`` blocks are skipped."""
    stack = list(tree.body)
    while stack:
        node = stack.pop(0)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            stack[:0] = node.orelse
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            if lazy:
                stack[:0] = list(ast.iter_child_nodes(node))
        else:
            stack[:0] = list(ast.iter_child_nodes(node))


def _resolve(module: str, is_pkg: bool, level: int, name: str | None) -> str:
    if not level:
        return name or ""
    base = module.split(".") if is_pkg else module.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def import_graph(lazy: bool = False) -> dict[str, set[str]]:
    """``{module: modules it imports}`` within the package (module-level imports; with ``lazy`` all)."""
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        is_pkg = path.name == "__init__.py"
        own_ancestors = {".".join(mod.split(".")[:k]) for k in range(1, mod.count(".") + 1)}
        if is_pkg:
            own_ancestors.add(mod)
        for node in _imports(ast.parse(path.read_text(), str(path)), lazy):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = _resolve(mod, is_pkg, node.level, node.module)
                for a in node.names:
                    sub = f"{base}.{a.name}"
                    targets.append(sub if sub in mods else base)
            for t in targets:
                if not (t == PKG or t.startswith(PKG + ".")):
                    continue
                parts = t.split(".")
                for k in range(1, len(parts) + 1):
                    dep = ".".join(parts[:k])
                    if dep in mods and dep != mod and dep not in own_ancestors:
                        graph[mod].add(dep)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _path(graph: dict[str, set[str]], comp: list[str]) -> str:
    """One cycle through the component, as ``a -> b -> a``."""
    members = set(comp)
    start = comp[0]
    prev = {start: None}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v] & members):
            if w == start:
                chain = [v]
                while prev[chain[-1]] is not None:
                    chain.append(prev[chain[-1]])
                return " -> ".join(reversed(chain)) + f" -> {start}"
            if w not in prev:
                prev[w] = v
                queue.append(w)
    return " <-> ".join(comp)


def _short(name: str) -> str:
    return name[len(PKG) + 1 :] if name.startswith(PKG + ".") else name


def _full(name: str) -> str:
    return f"{PKG}.{name}"


def test_no_import_cycles_at_module_level():
    graph = import_graph()
    found = cycles(graph)
    assert not found, "\n".join(f"import cycle: {_path(graph, comp)}" for comp in found)


def test_no_new_import_cycles_through_lazy_imports():
    graph = import_graph(lazy=True)
    gone = []
    for a, b in KNOWN_LAZY_BACK_EDGES:
        if _full(b) in graph[_full(a)]:
            graph[_full(a)].discard(_full(b))
        else:
            gone.append((a, b))
    msg = [f"import cycle (lazy imports included): {_path(graph, comp)}" for comp in cycles(graph)]
    msg += [f"known back edge {e} is gone: remove it from KNOWN_LAZY_BACK_EDGES" for e in gone]
    assert not msg, "\n".join(msg)


def test_the_graph_sees_imports():
    graph = import_graph()
    assert f"{PKG}.errors" in graph[f"{PKG}.cli"]
    assert f"{PKG}.model.config" in graph[f"{PKG}.model.train"]
    assert f"{PKG}.model.predictor" not in graph[f"{PKG}.model.train"]  # imported inside train()
    assert f"{PKG}.model.predictor" in import_graph(lazy=True)[f"{PKG}.model.train"]
    # training and adaptation share data and loop modules, and adaptation does not import training
    lazy = import_graph(lazy=True)
    assert f"{PKG}.model.data" in lazy[f"{PKG}.adapt.data"]
    assert not any(m.startswith(f"{PKG}.model.train") for m in lazy[f"{PKG}.adapt.data"] | lazy[f"{PKG}.adapt.loop"])


def test_layers_stay_apart():
    """Lower layers never reach up, not even through lazy imports (issue 18; the known back edges aside)."""
    lazy = import_graph(lazy=True)
    for a, b in KNOWN_LAZY_BACK_EDGES:
        lazy[_full(a)].discard(_full(b))

    def reaches(module: str) -> set[str]:
        seen, todo = set(), [_full(module)]
        while todo:
            for dep in lazy[todo.pop()]:
                if dep not in seen:
                    seen.add(dep)
                    todo.append(dep)
        return seen

    # the user folder (settings.user_home) is found without the checkpoints package
    assert not any(m.startswith(f"{PKG}.checkpoints") for m in reaches("settings"))
    # local and dask prediction both execute inference.plan; neither imports the other's module
    assert f"{PKG}.inference.plan" in lazy[f"{PKG}.inference.distributed"]
    assert f"{PKG}.inference.plan" in lazy[f"{PKG}.inference.predict"]
    assert f"{PKG}.inference.predict" not in reaches("inference.distributed")
    # thresholds and clean-up (postprocess) and the plan never reach the runners or the cluster
    for low in ("inference.postprocess", "inference.plan", "inference.stitch"):
        assert not reaches(low) & {_full("inference.predict"), _full("inference.distributed")}, low
    # checkpoint metadata is plain data: it reads nothing above errors
    assert reaches("checkpoints.meta") <= {f"{PKG}.errors"}
    # loading a checkpoint builds its translator from model/, never from adapt (a layer above)
    assert f"{PKG}.model.translator" in lazy[f"{PKG}.checkpoints.store"]
    for low in ("checkpoints", "checkpoints.store", "model.network", "model.translator", "settings"):
        assert not any(m.startswith(f"{PKG}.adapt") for m in reaches(low)), low
    # nothing in the core imports a widget module (widgets import checkpoint helpers from checkpoints/)
    for mod, deps in lazy.items():
        if not mod.startswith(f"{PKG}._napari"):
            assert not any(d.startswith(f"{PKG}._napari") for d in deps), mod
    assert not any(d.endswith("_predict_widget") for d in lazy[_full("_napari._finetune_widget")])


def test_no_private_names_across_inference_modules():
    """distributed uses the plan's public names, not predict's privates (issue 18)."""
    tree = ast.parse((ROOT / "inference" / "distributed.py").read_text())
    for node in _imports(tree, lazy=True):
        if isinstance(node, ast.ImportFrom) and node.level and (node.module or "").startswith(("predict", "plan")):
            private = [a.name for a in node.names if a.name.startswith("_")]
            assert not private, f"inference.distributed imports private {private} from {node.module}"


def test_a_cycle_is_found():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert _path(graph, ["a", "b", "c"]) == "a -> b -> c -> a"
