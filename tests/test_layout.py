"""The house's rules (docs/ARCHITECTURE.md), held against the code: which package may import which,
no import circles between files, and the pure packages import without Blender."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

# package -> the packages its modules may import (their own package always allowed). A package is
# the first two dotted parts (momask_blender.rig) or a top-level module (momask_blender.bake).
MAY_IMPORT = {
    "model_core": set(),  # the package's face: re-exports, imported lazily
    "model_core.errors": set(),
    "model_core.threads": set(),
    "model_core.inputs": {"model_core.errors"},
    "model_core.settings": {"model_core.errors", "model_core.inputs"},
    "model_core.checkpoints": {"model_core.errors"},
    "model_core.motion": {"model_core.errors", "model_core.inputs"},
    "model_core.networks": {"model_core.errors", "model_core.checkpoints"},
    "model_core.text": {"model_core.errors", "model_core.checkpoints", "model_core.networks"},
    "model_core.control": {"model_core.errors", "model_core.inputs", "model_core.settings", "model_core.motion"},
    "model_core.generation": {"model_core.errors", "model_core.settings", "model_core.checkpoints",
                              "model_core.motion", "model_core.networks", "model_core.text", "model_core.control",
                              "model_core.inputs"},
    "model_core.testing": {"model_core.checkpoints", "model_core.motion", "model_core.networks", "model_core.text"},
    "model_core.replay": {"model_core.errors", "model_core.settings", "model_core.generation", "model_core.motion",
                          "model_core.networks", "model_core.text", "model_core.inputs"},
    "model_core.serve": {"model_core", "model_core.errors", "model_core.settings", "model_core.checkpoints",
                         "model_core.motion", "model_core.generation", "model_core.inputs", "model_core.control"},
    "model_core.flags": {"model_core.settings"},
    "model_core.batch": {"model_core", "model_core.errors", "model_core.settings", "model_core.flags",
                         "model_core.motion", "model_core.generation", "model_core.serve", "model_core.inputs"},
    "model_core.cli": {"model_core.errors", "model_core.settings", "model_core.flags", "model_core.generation",
                       "model_core.replay", "model_core.serve", "model_core.batch", "model_core.inputs",
                       "model_core.control"},
    "model_core.__main__": {"model_core.cli"},
    "momask_blender": {"model_core", "momask_blender.jobs", "momask_blender.ui"},  # model_core: its thread policy
    "momask_blender.errors": {"model_core"},  # model_checks(): model_core's ModelError as a MomaskError
    "momask_blender.rig": {"model_core", "momask_blender.errors"},
    "momask_blender.setup": {"model_core", "momask_blender.errors"},
    "momask_blender.scene": {"model_core", "momask_blender.errors", "momask_blender.rig"},
    "momask_blender.jobs": {"model_core", "momask_blender.errors", "momask_blender.rig", "momask_blender.scene",
                            "momask_blender.setup"},
    "momask_blender.ui": {"model_core", "momask_blender.errors", "momask_blender.rig", "momask_blender.scene",
                          "momask_blender.setup", "momask_blender.jobs"},
}
COMMANDS = ("momask_blender.bake", "momask_blender.demo")  # on top: they may import any of the add-on
PURE = ("model_core", "momask_blender.rig", "momask_blender.setup", "momask_blender.errors")


def modules() -> dict[str, Path]:
    out = {}
    for top in ("model_core", "momask_blender"):
        for path in (ROOT / top).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            out[name.removesuffix(".__init__")] = path
    return out


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Project modules that `name` imports anywhere in its body (function-level imports count)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names}
    return {m for m in found if m in known or m.split(".")[0] in ("bpy", "torch")} - {name}


def package_of(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2])


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports_of(name, path, set(mods)) for name, path in mods.items()}


def test_every_package_has_a_rule(graph):
    unruled = sorted({package_of(m) for m in graph} - set(MAY_IMPORT) - set(COMMANDS))
    assert not unruled, f"add these packages to docs/ARCHITECTURE.md and MAY_IMPORT: {unruled}"


def test_imports_only_go_down(graph):
    wrong = []
    for module, deps in graph.items():
        own = package_of(module)
        if own in COMMANDS:
            continue
        allowed = MAY_IMPORT[own]
        for dep in deps:
            target = package_of(dep)
            if dep.split(".")[0] in ("bpy", "torch") or target == own:
                continue
            if module == own and dep.startswith(own + "."):
                continue  # a package's face hands on its own parts
            # the add-on may use any of model_core; inside a package's own tree only the named parts
            whole = target.split(".")[0] in allowed and target.split(".")[0] != own.split(".")[0]
            if target not in allowed and not whole:
                wrong.append(f"{module} imports {dep}")
    assert not wrong, "imports against the layering (docs/ARCHITECTURE.md):\n" + "\n".join(sorted(wrong))


def test_model_core_never_imports_the_add_on_or_blender(graph):
    bad = sorted(f"{m} imports {d}" for m, deps in graph.items() if m.startswith("model_core")
                 for d in deps if d.startswith(("momask_blender", "bpy")))
    assert not bad, bad


def test_no_import_circles(graph):
    index, low, stack, on, circles, counter = {}, {}, [], set(), [], [0]
    edges = {m: {d for d in deps if d in graph and not (m == package_of(d) and d.startswith(m + "."))}
             for m, deps in graph.items()}

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in edges:
        if v not in index:
            visit(v)
    assert not circles, f"files that import each other: {circles}"


def test_pure_packages_import_without_blender(graph):
    """Import every pure module in a Python where `import bpy` fails: none may need Blender."""
    pure = sorted(m for m in graph if m.startswith(PURE) and not m.endswith("__main__"))
    script = f"""
import importlib, sys
class NoBlender:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('bpy', 'mathutils', 'bpy_extras'):
            raise ImportError('no Blender here: ' + name)
sys.meta_path.insert(0, NoBlender())
for name in {pure!r}:
    importlib.import_module(name)
assert not any(m.split('.')[0] == 'bpy' for m in sys.modules)
print(len({pure!r}))
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.split()[-1]) == len(pure) > 20
