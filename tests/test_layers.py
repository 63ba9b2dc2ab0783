"""The house stays straight: every import in ``src/medfusion`` follows the layers of ARCHITECTURE.md.

The imports are read from the source (``ast``): module-level ones, function-local ones and ``TYPE_CHECKING``
ones alike — a function-local import is still an arrow, it only hides it. Each file maps to a *unit*: a
top-level module (``store``, ``agents`` …), one app package (``apps.mdt``), or one file of the app frame
(``apps.registry``, ``apps.spec`` …). :data:`ALLOWED` says which units each unit may import; anything else is
an upward or sideways import and fails the test with its file, line and imported module.

Layers, top to bottom (arrows point down only)::

    surfaces   cli · api · web
    apps       apps/<name> (never each other) — and the app frame, the files directly under apps/
    fusion     agents · knowledge · graph · specialists · alerts
    general    llm
    evolution  feedback · evaluation
    data       record · store · jobs · privacy · interop · synth

plus the cross-cutting modules every layer may use: ``settings``, ``errors``, ``logs``, ``contract``,
``packaged`` and the package root (``medfusion.__version__``).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT = SRC / "medfusion"

CROSS_CUTTING = frozenset({"settings", "errors", "logs", "contract", "packaged", "cjk", "medfusion"})
SURFACES = frozenset({"cli", "api", "web"})
FUSION = frozenset({"agents", "knowledge", "graph", "specialists", "alerts"})
GENERAL = frozenset({"llm"})
EVOLUTION = frozenset({"feedback", "evaluation"})
DATA = frozenset({"record", "store", "jobs", "privacy", "interop", "synth"})
# the app frame: the files directly under apps/ (registry, spec, deps …), written "apps.<file>" as units
FRAME = "apps.*"
APP = "apps.<name>"  # any one app package

# What each unit may import besides itself and the cross-cutting modules. A layer may use the layers below
# it, except where a line says otherwise; inside the data layer only the arrows listed here exist.
ALLOWED: dict[str, frozenset[str]] = {
    # data ------------------------------------------------------------------------------------------------
    "record": frozenset(),  # imports nothing of ours (besides errors)
    "interop": frozenset({"record"}),  # FHIR/HL7/DICOM to and from the record model
    "store": frozenset({"record", "interop"}),  # persists records; patient_service imports FHIR bundles
    "jobs": frozenset(),  # the engine knows nothing of the work; database chunk markers are store.job_chunks
    "privacy": frozenset({"record", "interop"}),  # de-identifies records and FHIR bundles (privacy.records)
    "synth": frozenset({"record", "interop"}),  # writes residents as our record or as R4 Bundles
    # evolution -------------------------------------------------------------------------------------------
    # feedback loops over the app frame's registry for each app's write-back ("api, cli, web, evaluation and
    # feedback loop over it")
    "feedback": DATA | {FRAME},
    # "evaluation may import anything below surfaces (it tests it)" — apps only through the frame, where
    # each app declares its evaluation targets; never an app package by name
    "evaluation": DATA | GENERAL | FUSION | {"feedback", FRAME},
    # general ---------------------------------------------------------------------------------------------
    # "llm imports nothing above it"; privacy de-identifies text before it leaves for an external model
    "llm": DATA | {"feedback"},
    # fusion ----------------------------------------------------------------------------------------------
    "graph": DATA | GENERAL | {"feedback"},
    "specialists": DATA | GENERAL | {"feedback"},  # values in, values out: no other fusion module
    # knowledge expands queries with graph synonyms and lexicon terms (knowledge.expansion): a dependency on
    # the graph's read side, never the reverse
    "knowledge": DATA | GENERAL | {"feedback", "graph"},
    "alerts": DATA | GENERAL | {"feedback"},
    # agents orchestrate the rest of the fusion layer (FusionPipeline: guardrails, specialist stage,
    # retrieval, graph conflict checks, alerts)
    "agents": DATA | GENERAL | {"feedback", "knowledge", "graph", "specialists", "alerts"},
    # apps ------------------------------------------------------------------------------------------------
    # the frame lists the installed apps (registry → apps.<name>, by importlib) and hands apps their
    # dependencies; it names no evaluation or feedback type (what an app's target speaks is in
    # contract.evaluation), so evaluation and feedback can loop over it without a cycle
    FRAME: DATA | GENERAL | FUSION | {APP, FRAME},
    # an app composes the layers below and the frame; never another app, never evaluation directly
    APP: DATA | GENERAL | FUSION | {"feedback", FRAME},
    # surfaces --------------------------------------------------------------------------------------------
    # surfaces discover apps through the frame (never an app package by name); they show the validation
    # center's runs, so they call evaluation's service functions (api/evaluation.py, the web pages and the
    # `eval` commands)
    "web": DATA | GENERAL | FUSION | EVOLUTION | {FRAME},
    "api": DATA | GENERAL | FUSION | EVOLUTION | {FRAME, "web"},  # the API application mounts the web pages
    "cli": DATA | GENERAL | FUSION | EVOLUTION | {FRAME, "api"},  # `medfusion serve` runs the API application
    # cross-cutting modules import nothing of ours but each other
    **dict.fromkeys(CROSS_CUTTING, CROSS_CUTTING),
    "__main__": frozenset({"cli"}),  # `python -m medfusion`
}


@dataclass(frozen=True)
class Import:
    file: Path
    line: int
    source: str  # the importing file's dotted module, e.g. medfusion.evaluation.runner
    target: str  # the imported module, e.g. medfusion.store.tables


def _module_of(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(dotted: str) -> bool:
    base = SRC.joinpath(*dotted.split("."))
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def _imports(path: Path) -> list[Import]:
    """Every ``medfusion`` import in one file, wherever it stands; ``from a import b`` names ``a.b`` when that
    is a module (``from medfusion.apps import mdt`` imports the app, not the frame)."""
    source = _module_of(path)
    package = source if path.name == "__init__.py" else source.rpartition(".")[0]
    found: list[Import] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [Import(path, node.lineno, source, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            for alias in node.names:
                child = f"{module}.{alias.name}"
                found.append(Import(path, node.lineno, source, child if _is_module(child) else module))
    return [i for i in found if i.target == "medfusion" or i.target.startswith("medfusion.")]


def unit_of(dotted: str) -> str:
    """The unit a dotted module belongs to: ``medfusion.store.tables`` → ``store``, ``medfusion.apps.mdt.api``
    → ``apps.mdt``, ``medfusion.apps.registry`` → ``apps.registry``, ``medfusion`` → ``medfusion``."""
    parts = dotted.split(".")[1:]
    if not parts:
        return "medfusion"
    if parts[0] == "apps":
        return "apps.__init__" if len(parts) == 1 else f"apps.{parts[1]}"
    return parts[0]


def _is_app(unit: str) -> bool:
    return unit.startswith("apps.") and (ROOT / "apps" / unit.partition(".")[2] / "__init__.py").exists()


def _rule_key(unit: str) -> str:
    if unit.startswith("apps."):
        return APP if _is_app(unit) else FRAME
    return unit


def all_imports() -> list[Import]:
    """Each (file, line, imported module) once: ``from a import b, c`` of one module is one arrow."""
    return list(dict.fromkeys(i for path in sorted(ROOT.rglob("*.py")) for i in _imports(path)))


def _where(i: Import) -> str:
    return f"{i.file.relative_to(SRC.parent)}:{i.line} imports {i.target}"


def test_every_source_file_belongs_to_a_layer() -> None:
    units = {unit_of(_module_of(p)) for p in ROOT.rglob("*.py")}
    unknown = sorted(u for u in units if _rule_key(u) not in ALLOWED)
    assert not unknown, f"modules not in ARCHITECTURE.md's layers (add them to ALLOWED): {unknown}"


def test_imports_point_down_only() -> None:
    offending = []
    for i in all_imports():
        source, target = unit_of(i.source), unit_of(i.target)
        if source == target or target in CROSS_CUTTING:
            continue
        allowed = ALLOWED[_rule_key(source)]
        if _rule_key(target) not in allowed:
            offending.append(f"{_where(i)} ({source} → {target})")
    assert not offending, "upward or sideways imports:\n" + "\n".join(offending)


def test_apps_never_import_each_other() -> None:
    offending = [
        _where(i)
        for i in all_imports()
        if _is_app(unit_of(i.source))
        and _is_app(unit_of(i.target))
        and unit_of(i.source) != unit_of(i.target)
    ]
    assert not offending, "apps importing other apps:\n" + "\n".join(offending)


def _app_names() -> list[str]:
    return sorted(p.parent.name for p in (ROOT / "apps").glob("*/__init__.py"))


def _docstrings(tree: ast.AST) -> list[ast.expr]:
    holders = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    return [
        node.body[0].value
        for node in ast.walk(tree)
        if isinstance(node, holders) and node.body and isinstance(node.body[0], ast.Expr)
    ]


def _keyed_strings(tree: ast.AST) -> list[ast.Constant]:
    """String constants used to dispatch: dictionary keys and either side of a comparison."""
    found: list[ast.expr | None] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            found += node.keys
        elif isinstance(node, ast.Compare):
            found += [node.left, *node.comparators]
    return [n for n in found if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def test_no_module_below_apps_names_an_app() -> None:
    """ "A lower layer never names an app" (no ``"mdt"`` in ``feedback``): below the apps layer no import of
    ``medfusion.apps.<name>``, no string holding that dotted path (import by name), and no app's name as a
    dictionary key or compared against — an app tells the lower layers what it needs through its AppSpec."""
    apps = _app_names()
    offending = []
    for path in sorted(ROOT.rglob("*.py")):
        unit = unit_of(_module_of(path))
        if unit.startswith("apps.") or unit in SURFACES:
            continue
        where = path.relative_to(SRC.parent)
        offending += [_where(i) for i in dict.fromkeys(_imports(path)) if _is_app(unit_of(i.target))]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {id(d) for d in _docstrings(tree)}  # prose may mention an app; code may not
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                named = [a for a in apps if f"medfusion.apps.{a}" in node.value]
                offending += [f"{where}:{node.lineno} names medfusion.apps.{a}" for a in named]
        offending += [
            f"{where}:{n.lineno} names the app {n.value!r}" for n in _keyed_strings(tree) if n.value in apps
        ]
    assert not offending, "modules below apps naming an app:\n" + "\n".join(offending)


def _routers() -> set[str]:
    """Modules that define a FastAPI router at module level (``router = APIRouter(...)``)."""
    found = set()
    for path in ROOT.rglob("*.py"):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if (
                isinstance(node, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == "router" for t in node.targets)
                and isinstance(node.value, ast.Call)
                and getattr(node.value.func, "id", "") == "APIRouter"
            ):
                found.add(_module_of(path))
    return found


def test_no_router_imports_another_router() -> None:
    """Routers share code through the layers below (or the app frame's dependencies), never each other."""
    routers = _routers()
    offending = [
        _where(i)
        for i in all_imports()
        if i.source in routers and i.target in routers and i.source != i.target
    ]
    assert not offending, "routers importing routers:\n" + "\n".join(offending)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(components)


def _is_type_checking(path: Path) -> set[int]:
    """Lines of imports under ``if TYPE_CHECKING:`` — arrows for the layers, but never executed."""
    lines: set[int] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            lines |= {n.lineno for child in node.body for n in ast.walk(child) if hasattr(n, "lineno")}
    return lines


def _executed_imports() -> list[Import]:
    guarded = {path: _is_type_checking(path) for path in ROOT.rglob("*.py")}
    return [i for i in all_imports() if i.line not in guarded[i.file]]


def test_no_import_cycles_between_modules() -> None:
    """Between top-level modules, app packages and the app frame's files."""
    graph: dict[str, set[str]] = defaultdict(set)
    for i in _executed_imports():
        source, target = unit_of(i.source), unit_of(i.target)
        if source != target:
            graph[source].add(target)
    cycles = _cycles(graph)
    assert not cycles, f"import cycles between modules: {cycles}"


def test_no_import_cycles_between_files() -> None:
    """Inside a module too (e.g. evaluation's report and runner share ``results.RunResult`` instead of
    importing each other). A package's ``__init__`` re-exporting its submodules is not an edge back."""
    graph: dict[str, set[str]] = defaultdict(set)
    for i in _executed_imports():
        if i.source != i.target and not i.source.startswith(i.target + "."):
            graph[i.source].add(i.target)
    cycles = _cycles(graph)
    assert not cycles, f"import cycles between files: {cycles}"


def test_only_settings_touches_the_environment() -> None:
    """ "never ``os.environ`` read outside ``settings``": other modules read the settings object, and set
    what third-party libraries read from the environment through ``settings.set_process_default`` and
    ``settings.child_environment``."""
    offending = []
    for path in sorted(ROOT.rglob("*.py")):
        if path == ROOT / "settings.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in {"environ", "getenv", "putenv", "unsetenv"}:
                offending.append(f"{path.relative_to(SRC.parent)}:{node.lineno} uses os.{node.attr}")
            elif isinstance(node, ast.ImportFrom) and node.module == "os":
                names = {a.name for a in node.names} & {"environ", "getenv", "putenv", "unsetenv"}
                offending += [f"{path.relative_to(SRC.parent)}:{node.lineno} imports os.{n}" for n in names]
    assert not offending, "environment access outside settings:\n" + "\n".join(offending)
