"""steer_ui.errors: the core raises only ``SteerError`` subclasses, and out-of-memory
errors become a ``ResourceError`` that says what to try."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from steer_ui import errors
from steer_ui.errors import ResourceError, SteerError, out_of_memory

PACKAGE = Path(__file__).resolve().parents[1] / "steer_ui"
DOMAIN = {name for name, obj in vars(errors).items() if isinstance(obj, type) and issubclass(obj, SteerError)}


def _raised_names(tree: ast.AST):
    """The class each ``raise`` statement names: ``X(...)``, ``X``, ``mod.X(...)``.
    A bare name in lower case is a caught exception being re-raised: not a new error."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and node.exc is not None:
            exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(exc, ast.Attribute) and exc.attr[0].isupper():  # mod.Error, not job.error
                yield ast.unparse(exc), node.lineno
            elif isinstance(exc, ast.Name) and exc.id[0].isupper():
                yield exc.id, node.lineno


def _edge(path: Path, name: str) -> bool:
    """The edges turn domain errors into their own: gr.Error in the UI (app.ui, app.tabs),
    ApiError (an HTTP status) in the API (app.api). Nowhere else."""
    rel = path.relative_to(PACKAGE).parts
    if rel[:1] != ("app",):
        return False
    return (name == "gr.Error" and (rel[-1] == "ui.py" or "tabs" in rel)) or (name == "ApiError" and "api" in rel)


def test_the_core_raises_only_domain_errors():
    found = [(str(p.relative_to(PACKAGE.parent)), line, name) for p in PACKAGE.rglob("*.py")
             for name, line in _raised_names(ast.parse(p.read_text()))
             if name not in DOMAIN and not _edge(p, name)
             and not (p.name == "__init__.py" and name == "AttributeError")]  # a module's own __getattr__
    assert found == [], f"raise a SteerError subclass (errors.py) instead: {found}"


def test_the_scan_sees_qualified_and_plain_raises():
    tree = ast.parse("def f():\n    raise ValueError('x')\n\ndef g():\n    raise torch.OutOfMemoryError()\n"
                     "\ndef h(exc, job):\n    raise exc\n    raise job.error\n")
    assert [n for n, _ in _raised_names(tree)] == ["ValueError", "torch.OutOfMemoryError"]


@pytest.mark.parametrize("exc", [torch.OutOfMemoryError("CUDA out of memory"), MemoryError(),
                                 RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried 8 GB")])
def test_out_of_memory_becomes_a_resource_error(exc):
    with pytest.raises(ResourceError, match="Out of memory while scoring: use fewer items.") as info:
        with out_of_memory("scoring", "use fewer items."):
            raise exc
    assert isinstance(info.value, SteerError) and info.value.__cause__ is exc


def test_other_errors_pass_through_out_of_memory():
    with pytest.raises(RuntimeError, match="shape mismatch"):
        with out_of_memory("scoring", "use fewer items."):
            raise RuntimeError("shape mismatch")
