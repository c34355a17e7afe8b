"""Packaging facts: the layout installs as designed and the mujoco pin's reason stays tested."""

from __future__ import annotations

import importlib.metadata
import site
import subprocess
import sys
from pathlib import Path

import numpy as np
from packaging.version import Version

import skillplan
import skillplan.cli
import skillplan.envs

REPO = Path(__file__).resolve().parents[1]


def test_envs_and_cli_install_as_subpackages():
    assert Path(skillplan.envs.__file__).parent == REPO / "envs"
    assert Path(skillplan.cli.__file__).parent == REPO / "cli"
    for sp in site.getsitepackages():
        assert not (Path(sp) / "envs").exists() and not (Path(sp) / "cli").exists()
    # away from the checkout, bare `envs`/`cli` must not be importable
    probe = "import importlib.util as u; print(u.find_spec('envs'), u.find_spec('cli'))"
    out = subprocess.run([sys.executable, "-c", probe], cwd="/", capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "None None"


def test_console_script_is_declared():
    scripts = importlib.metadata.entry_points(group="console_scripts")
    assert any(ep.name == "skillplan" and ep.value == "skillplan.cli.main:run" for ep in scripts)


def test_mujoco_is_below_3_12():
    assert Version(importlib.metadata.version("mujoco")) < Version("3.12")


def test_franka_kitchen_resets_and_steps():
    """From mujoco 3.12 on this fails at reset inside gymnasium-robotics (see pyproject)."""
    from skillplan.envs.base import make_base_env

    env = make_base_env("FrankaKitchen-v1")
    obs, _ = env.reset(seed=0)
    assert obs["observation"].shape == (59,)
    for _ in range(5):
        obs, _, _, _, info = env.step(np.zeros(9, dtype=np.float32))
    assert np.isfinite(obs["observation"]).all() and "episode_task_completions" in info
    env.close()


def test_version_flag():
    out = subprocess.run(
        [sys.executable, "-m", "skillplan.cli.main", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"skillplan {skillplan.__version__}"


def test_every_package_directory_is_declared():
    """A package missing from pyproject's list works in the editable checkout but not in a wheel."""
    import tomllib

    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    roots = {"skillplan": REPO / "skillplan"}
    roots |= {name: REPO / folder for name, folder in setuptools["package-dir"].items()}
    found = set()
    for name, root in roots.items():
        for module in root.rglob("*.py"):  # a directory of modules, with or without __init__.py
            found.add(".".join((name, *module.parent.relative_to(root).parts)))
    assert found == set(setuptools["packages"])
