"""The pipeline must not peek at the sandbox's ground truth.

Scans every production module (kinetics_assets/, jobs/, expectations/, and resources/ outside resources/sandbox/)
with ast for any import of resources.sandbox.truth, absolute or relative, or a dynamic import by name.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRUTH = "resources.sandbox.truth"
PRODUCTION_PACKAGES = ("kinetics_assets", "resources", "jobs", "expectations")
ALLOWED_DIR = ROOT / "resources" / "sandbox"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The absolute module an ImportFrom names, resolving leading dots against the importing module."""
    if not node.level:
        return node.module or ""
    package = module.split(".") if is_package else module.split(".")[:-1]
    base = package[:len(package) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def truth_imports(source: str, module: str, is_package: bool = False) -> list[int]:
    """Line numbers in `source` (the code of `module`) that import the ground-truth module."""
    hits = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            if any(a.name == TRUTH or a.name.startswith(TRUTH + ".") for a in node.names):
                hits.append(node.lineno)
        elif isinstance(node, ast.ImportFrom):
            target = _absolute(node, module, is_package)
            if target == TRUTH or target.startswith(TRUTH + ".") or (
                    target == "resources.sandbox" and any(a.name == "truth" for a in node.names)):
                hits.append(node.lineno)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and TRUTH in node.value:
            hits.append(node.lineno)  # importlib.import_module("resources.sandbox.truth") and the like
    return hits


def production_modules() -> list[Path]:
    files = []
    for package in PRODUCTION_PACKAGES:
        files += [p for p in (ROOT / package).rglob("*.py") if ALLOWED_DIR not in p.parents]
    return files


def test_no_production_module_imports_the_ground_truth():
    offenders = []
    for path in production_modules():
        for line in truth_imports(path.read_text(encoding="utf-8"), _module_name(path), path.name == "__init__.py"):
            offenders.append(f"{path.relative_to(ROOT)}:{line}")
    assert not offenders, f"production code imports {TRUTH}: {offenders}"


def test_scan_covers_the_pipeline_packages():
    scanned = {p.relative_to(ROOT).parts[0] for p in production_modules()}
    assert {"kinetics_assets", "resources"} <= scanned
    assert not any(ALLOWED_DIR in p.parents for p in production_modules())


def test_scanner_catches_every_import_spelling():
    caught = [
        ("import resources.sandbox.truth", "kinetics_assets.x"),
        ("import resources.sandbox.truth as t", "kinetics_assets.x"),
        ("from resources.sandbox.truth import GroundTruth", "kinetics_assets.x"),
        ("from resources.sandbox import truth", "kinetics_assets.x"),
        ("from resources.sandbox import world, truth as t", "jobs.x"),
        ("from .sandbox import truth", "resources.video_platform"),
        ("from .sandbox.truth import GroundTruth", "resources.video_platform"),
        ("from ..sandbox import truth", "resources.sub.x"),
        ("from .truth import GroundTruth", "resources.sandbox"),
        ("def f():\n    import importlib\n    return importlib.import_module('resources.sandbox.truth')", "jobs.x"),
    ]
    for source, module in caught:
        is_package = module == "resources.sandbox"
        assert truth_imports(source, module, is_package), source
    fine = [
        ("from resources.sandbox import world", "kinetics_assets.x"),
        ("from resources.sandbox.world import World", "resources.video_platform"),
        ("import truthiness", "jobs.x"),
        ("from . import truth", "kinetics_assets.checks"),
    ]
    for source, module in fine:
        assert not truth_imports(source, module), source
