"""What the package imports is declared in pyproject.toml (in ``dependencies``, or in the extra of the
modules that run only with it installed), and requirements.lock, which ``make setup`` installs before the
package itself with ``--no-deps``, pins every declared distribution at a version its bound allows."""

from __future__ import annotations

import ast
import functools
import sys
import tomllib
from importlib.metadata import distributions, packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import clipforensics

PACKAGE = Path(clipforensics.__file__).parent
ROOT = PACKAGE.parent
EXTRA_MODULES = {
    "serve": ("serve/", "cli/serve.py"),
    "ray": ("inference/ray_engine.py", "inference/parts.py"),
    "retinaface": ("faces/retinaface.py",),
}
"""The modules that run only with an extra installed, by extra (paths relative to the package)."""


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _declared() -> dict[str | None, set[str]]:
    """Distribution names by extra; None: the core ``dependencies``."""
    project = _project()
    groups = {None: project["dependencies"], **project["optional-dependencies"]}
    return {extra: {canonicalize_name(Requirement(spec).name) for spec in specs} for extra, specs in groups.items()}


def _imports(source: Path) -> set[str]:
    """The top-level names of the absolute imports of a module, wherever in it they are (lazy ones too)."""
    names = set()
    for node in ast.walk(ast.parse(source.read_text(), str(source))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    return {name for name in names if name not in sys.stdlib_module_names and name != "clipforensics"}


@functools.cache
def _distributions_by_import_name() -> dict[str, set[str]]:
    """Import name -> the installed distributions that provide it: ``packages_distributions``, completed
    from each distribution's file list where its ``top_level.txt`` leaves a package out (``dlib-bin`` names
    only its extension module ``_dlib_pybind11``, not the ``dlib`` package beside it)."""
    found = {name: {canonicalize_name(dist) for dist in dists} for name, dists in packages_distributions().items()}
    for dist in distributions():
        for file in dist.files or ():
            if len(file.parts) > 1 and file.parts[1] == "__init__.py":
                found.setdefault(file.parts[0], set()).add(canonicalize_name(dist.metadata["Name"]))
    return found


def _extra_of(module: Path) -> str | None:
    relative = module.relative_to(PACKAGE).as_posix()
    return next((extra for extra, prefixes in EXTRA_MODULES.items() if relative.startswith(prefixes)), None)


def test_every_distribution_the_package_imports_is_declared_where_its_modules_need_it():
    declared = _declared()
    providers = _distributions_by_import_name()
    undeclared, unknown = [], []
    for module in sorted(PACKAGE.rglob("*.py")):
        extra = _extra_of(module)
        allowed = declared[None] | (declared[extra] if extra else set())
        for name in sorted(_imports(module)):
            if name not in providers:
                unknown.append(f"{module.relative_to(ROOT)}: {name}")
            elif not providers[name] & allowed:
                undeclared.append(f"{module.relative_to(ROOT)} imports {name} ({', '.join(sorted(providers[name]))}), "
                                  f"declared in neither dependencies{f' nor the {extra} extra' if extra else ''}")

    assert not unknown, f"imports no installed distribution provides: {unknown}"
    assert not undeclared, "\n".join(undeclared)


def test_the_modules_of_each_extra_exist():
    for extra, prefixes in EXTRA_MODULES.items():
        assert extra in _declared()
        for prefix in prefixes:
            assert (PACKAGE / prefix).exists(), f"{prefix} (the {extra} extra's) is gone: update EXTRA_MODULES"


def _locked() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            requirement = Requirement(line)
            pins[canonicalize_name(requirement.name)] = str(next(iter(requirement.specifier)).version)
    return pins


@pytest.mark.parametrize("group", [None, "serve", "ray", "retinaface", "test"])
def test_the_lock_pins_every_declared_distribution_within_its_bounds(group):
    project = _project()
    specs = project["dependencies"] if group is None else project["optional-dependencies"][group]
    locked = _locked()

    for spec in specs:
        requirement = Requirement(spec)
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{spec} is declared but requirements.lock does not pin it"
        assert requirement.specifier.contains(locked[name], prereleases=True), (
            f"requirements.lock pins {name}=={locked[name]}, outside the declared {spec}")


def test_the_dependency_check_sees_lazy_imports_and_names_packages_that_top_level_txt_leaves_out(tmp_path):
    module = tmp_path / "lazy.py"
    module.write_text("import os\n\n\ndef f():\n    from scipy.special import expit\n    import dlib\n"
                      "    from . import x\n")

    assert _imports(module) == {"scipy", "dlib"}
    assert "dlib-bin" in _distributions_by_import_name()["dlib"]
