"""Tests of the package as installed: imports, exported names and the type marker."""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.resources
import json
import pkgutil
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import geargevent

PACKAGE_DIR = Path(geargevent.__file__).parent
PROJECT_DIR = PACKAGE_DIR.parent


def module_names(public_only: bool) -> list[str]:
    names = []
    for info in pkgutil.iter_modules(geargevent.__path__):
        if public_only and info.name.startswith("_"):
            continue
        names.append(f"geargevent.{info.name}")
    return sorted(names)


PUBLIC_MODULES = module_names(public_only=True)
ALL_MODULES = module_names(public_only=False)


def run_python(code: str) -> str:
    """Run code in a fresh interpreter and return its standard output."""
    completed = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def test_import_patches_nothing() -> None:
    output = run_python(
        """
        import json
        import geargevent
        import gevent.monkey

        modules = ["socket", "select", "selectors", "ssl", "thread", "threading", "time",
                   "os", "subprocess", "signal", "queue"]
        print(json.dumps({
            "patched": [m for m in modules if gevent.monkey.is_module_patched(m)],
            "saved": sorted(gevent.monkey.saved),
        }))
        """
    )
    result = json.loads(output)

    assert result["patched"] == []
    assert result["saved"] == []


def test_importing_every_module_patches_nothing() -> None:
    output = run_python(
        f"""
        import importlib
        import json
        for name in {ALL_MODULES!r}:
            importlib.import_module(name)
        import gevent.monkey
        import socket
        import threading
        print(json.dumps({{
            "socket": gevent.monkey.is_module_patched("socket"),
            "threading": gevent.monkey.is_module_patched("threading"),
            "saved": sorted(gevent.monkey.saved),
            "socket_module": socket.socket.__module__,
            "lock_module": type(threading.Lock()).__module__,
        }}))
        """
    )
    result = json.loads(output)

    assert result["socket"] is False
    assert result["threading"] is False
    assert result["saved"] == []
    assert result["socket_module"] == "socket"
    assert not result["lock_module"].startswith("gevent")


def test_all_names_exist() -> None:
    assert len(geargevent.__all__) == len(set(geargevent.__all__))
    for name in geargevent.__all__:
        assert hasattr(geargevent, name), name


def test_main_classes_exported() -> None:
    for name in ("GearmanWorker", "GearmanClient", "GearmanJob", "GearmanError", "DataEncoder"):
        assert name in geargevent.__all__


def test_star_import_matches_all() -> None:
    namespace: dict[str, object] = {}
    exec("from geargevent import *", namespace)

    exported = {name for name in namespace if name != "__builtins__"}
    assert exported == set(geargevent.__all__)


def test_version_matches_metadata() -> None:
    assert geargevent.__version__ == importlib.metadata.version("geargevent")


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_public_module_has_all(module_name: str) -> None:
    module = importlib.import_module(module_name)

    assert hasattr(module, "__all__"), f"{module_name} has no __all__"
    assert len(module.__all__) == len(set(module.__all__)), module_name
    for name in module.__all__:
        assert hasattr(module, name), f"{module_name}.__all__ lists missing {name!r}"


@pytest.mark.parametrize("module_name", ALL_MODULES)
def test_listed_names_exist(module_name: str) -> None:
    module = importlib.import_module(module_name)

    for name in getattr(module, "__all__", ()):
        assert hasattr(module, name), f"{module_name}.__all__ lists missing {name!r}"


def test_public_modules_found() -> None:
    for name in ("client", "connection", "encoders", "errors", "job", "worker"):
        assert f"geargevent.{name}" in PUBLIC_MODULES


def test_py_typed_in_package() -> None:
    marker = importlib.resources.files("geargevent").joinpath("py.typed")

    assert marker.is_file()


def test_py_typed_ships_in_build(tmp_path: Path) -> None:
    # Build the package as a wheel would contain it, from a copy of the sources, so the
    # working tree is not touched.
    pytest.importorskip("setuptools")
    source = tmp_path / "source"
    source.mkdir()
    shutil.copytree(
        PACKAGE_DIR, source / "geargevent", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(PROJECT_DIR / "pyproject.toml", source / "pyproject.toml")
    build_dir = tmp_path / "build"

    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            "from setuptools import setup; setup()",
            "-q",
            "build_py",
            "--build-lib",
            str(build_dir),
        ],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr
    assert (build_dir / "geargevent" / "py.typed").is_file()
    assert (build_dir / "geargevent" / "__init__.py").is_file()
