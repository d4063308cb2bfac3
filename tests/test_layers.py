"""The import graph points one way: the runner uses the stages, the stages use the vocabulary,
never the reverse, and no stage reaches into another. Function-local imports count too."""
from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

# package → layer; a module may import its own package and packages of a lower layer
LAYERS = {
    "tthc": 0,  # the vocabulary: form, model, periods, config, units, findings, checks, landing contract
    "extractors": 1, "transforms": 1, "validations": 1, "warehouse": 1, "publishing": 1,  # the stages
    "simulator": 1,  # the sample sources: speaks the vocabulary, knows no stage
    "intake": 1.5,  # the units' intake application: uses several stages, used by the runner's CLI
    "runner": 2,  # pipeline stages, CLI, Airflow support, bench
    "dags": 3, "bench": 3,  # only wiring and measuring
}
STAGES = {name for name, layer in LAYERS.items() if layer == 1}


def imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def violations(root: Path = REPO) -> list[str]:
    out = []
    for package, layer in LAYERS.items():
        for path in sorted((root / package).rglob("*.py")):
            for line, name in imports(path):
                target = name.split(".")[0]
                if target not in LAYERS or target == package:
                    continue
                sideways = package in STAGES and target in STAGES
                if LAYERS[target] > layer or (LAYERS[target] == layer and layer > 0) or sideways:
                    out.append(f"{path.relative_to(root)}:{line} imports {name} ({package} → {target})")
    return out


def test_imports_point_down_the_layers():
    assert violations() == []


def test_a_lower_layer_importing_a_higher_one_is_caught(tmp_path):
    for package in LAYERS:
        (tmp_path / package).mkdir()
    (tmp_path / "tthc" / "model.py").write_text("def f():\n    from runner import pipeline\n")
    (tmp_path / "transforms" / "x.py").write_text("import warehouse.db\nfrom tthc import model\n")
    (tmp_path / "runner" / "cli.py").write_text("from transforms import x\n")
    assert violations(tmp_path) == [
        "tthc/model.py:2 imports runner (tthc → runner)",
        "transforms/x.py:1 imports warehouse.db (transforms → warehouse)",
    ]
