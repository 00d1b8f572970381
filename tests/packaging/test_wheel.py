"""Packaging: the wheel ships the recipes and configs, and the ``mcbo`` command works from it outside the checkout.

The wheel is built from a copy of the source (so the checkout gets no ``build/`` folder) and installed
with ``--no-deps`` into a fresh virtual environment that sees this environment's site-packages through
a ``.pth`` file placed after its own: torch and the other dependencies come from here, mcbo from the wheel.
The wheel test takes about 40 s on 2 cores; the editable-install one is marked slow.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
#: What a wheel is built from (the rest of the checkout is not installed).
SOURCES = ("pyproject.toml", "README.md", "MANIFEST.in", "mcbo", "solvers", "configs")


def _setuptools_config() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_pyproject_lists_every_package_and_maps_the_recipes_and_configs() -> None:
    config = _setuptools_config()
    on_disk = {".".join(init.parent.relative_to(REPO).parts) for init in (REPO / "mcbo").rglob("__init__.py")}
    listed = set(config["packages"])
    assert listed - {"mcbo.recipes", "mcbo.configs"} == on_disk, "add new sub-packages to pyproject's packages"
    assert config["package-dir"]["mcbo.recipes"] == "solvers" and config["package-dir"]["mcbo.configs"] == "configs"
    assert config["package-data"]["mcbo.recipes"] == ["*.yaml"]
    assert list((REPO / "solvers").glob("*.yaml")) and list((REPO / "configs").glob("*.yaml"))


def _copy_sources(dest: Path) -> Path:
    dest.mkdir()
    for name in SOURCES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif source.exists():
            shutil.copy2(source, dest / name)
    return dest


def _venv(path: Path) -> Path:
    """A virtual environment without pip that sees this one's site-packages after its own; its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=120)
    python = path / "bin" / "python"
    own = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    (Path(own) / "zz_parent_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def _pip(python: Path, *args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
                           "--no-build-isolation", "--quiet", *args], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    return env


def _mcbo(venv_python: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([str(venv_python.parent / "mcbo"), *args], cwd=cwd, env=_env(), capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    return done


def _python(venv_python: Path, cwd: Path, code: str) -> str:
    done = subprocess.run([str(venv_python), "-c", code], cwd=cwd, env=_env(), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_wheel_ships_recipes_and_configs_and_runs_outside_the_checkout(tmp_path: Path) -> None:
    source = _copy_sources(tmp_path / "src")
    dist = tmp_path / "dist"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                            "-w", str(dist), str(source)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr
    (wheel,) = dist.glob("mcbo-*.whl")
    import zipfile

    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"mcbo/recipes/{p.name}" for p in (REPO / "solvers").glob("*.yaml")} <= names
    assert {"mcbo/configs/quick.yaml", "mcbo/configs/meta/hpo_krr_cpu.yaml", "mcbo/py.typed"} <= names

    python = _venv(tmp_path / "venv")
    _pip(python, str(wheel))
    work = tmp_path / "elsewhere"
    work.mkdir()
    location = _python(python, work, "import mcbo; print(mcbo.__file__)")
    assert Path(location).is_relative_to(tmp_path / "venv") and not Path(location).is_relative_to(REPO), location

    listing = _mcbo(python, work, "solvers").stdout
    for name in ("casmopolitan", "rs", "boils", "optuna-tpe"):
        assert name in listing
    shipped = _python(python, work, "from mcbo.runner.config import find_config; print(find_config('quick'))")
    assert Path(shipped).is_relative_to(tmp_path / "venv")

    run = _mcbo(python, work, "run", "--solver", "rs", "--task", "pest_control", "--evals", "3", "--out", "out", "-q")
    assert "best value after 3 evaluations" in run.stdout
    assert (work / "out" / "rs_pest_control_seed0.csv").is_file() and (work / "out" / "rs_pest_control_seed0.png")

    (work / "tiny.yaml").write_text(yaml.safe_dump({"name": "tiny", "budget": 3, "seeds": 1, "solvers": ["rs"],
                                                    "tasks": ["crash_cat"]}))
    bench = _mcbo(python, work, "bench", "tiny.yaml", "--db", "tiny.db", "--no-progress")
    assert " done " in bench.stdout and (work / "tiny.db").is_file()


@pytest.mark.slow
def test_editable_install_reads_the_recipes_from_the_checkout(tmp_path: Path) -> None:
    source = _copy_sources(tmp_path / "src")
    python = _venv(tmp_path / "venv")
    _pip(python, "--editable", str(source))
    work = tmp_path / "elsewhere"
    work.mkdir()
    assert Path(_python(python, work, "import mcbo; print(mcbo.__file__)")).is_relative_to(source)
    folders = _python(python, work, "from mcbo.solvers.registry import recipe_dir; "
                                    "from mcbo.runner.config import config_dir; print(recipe_dir(), config_dir())")
    assert folders.split() == [str(source / "solvers"), str(source / "configs")]
    assert "casmopolitan" in _mcbo(python, work, "solvers").stdout
