"""The suite on a local Ray instance: same evaluations as the local backend, retries, resume, errors."""

from __future__ import annotations

import builtins
import csv
import io
import os
import signal
import threading
import time

import pytest
from rich.console import Console

from skillplan.benchmarking.ray_backend import run_suite_on_ray
from skillplan.benchmarking.report import EVALUATIONS
from skillplan.benchmarking.suite import DONE_FILE, run_suite
from skillplan.envs.generate import generate_dataset
from skillplan.errors import ConfigError
from tests.test_benchmark_suite import ENV, tiny_suite

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_instance():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("minari")
    old = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(root)
    try:
        generate_dataset("pointmaze-scripted", episodes={"general": 24, "expert": 8}, workers=1)
    finally:
        os.environ.pop("MINARI_DATASETS_PATH") if old is None else os.environ.update(MINARI_DATASETS_PATH=old)
    return str(root)


def deterministic_rows(out):
    """evaluations.csv without its wall-time columns, sorted."""
    with (out / EVALUATIONS).open() as f:
        rows = [{k: v for k, v in r.items() if "time" not in k} for r in csv.DictReader(f)]
    return sorted(rows, key=lambda r: (r["env"], r["method"], int(r["seed"]), int(r["env_steps"])))


def test_ray_runs_the_suite_as_the_local_backend_does_and_resumes(ray_instance, dataset_root, tmp_path,
                                                                  monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", dataset_root)
    config = tiny_suite(methods=["spirl", "skillplan"])  # both agents, on priors their tasks wait for
    run_suite(config, tmp_path / "local", workers=2, console=Console(file=io.StringIO()))
    console = Console(file=io.StringIO())
    run_suite_on_ray(config, tmp_path / "ray", workers=2, console=console)
    assert "on Ray" in console.file.getvalue()
    local, on_ray = deterministic_rows(tmp_path / "local"), deterministic_rows(tmp_path / "ray")
    assert len(on_ray) == len(config.methods) * config.seeds * 3
    assert on_ray == local
    assert not list((tmp_path / "ray").glob(".ray-storage-check-*"))
    assert ray.is_initialized()  # a Ray instance the caller started is left running

    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "ray").glob("runs/*/*/*/metrics.csv")}
    console = Console(file=io.StringIO())
    run_suite_on_ray(config, tmp_path / "ray", workers=2, console=console)
    assert "every run asked for has finished" in console.file.getvalue()
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "ray").glob("runs/*/*/*/metrics.csv")} == before


def parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rpartition(")")[2].split()[1])


def ray_job_pids() -> list[int]:
    """The processes running a suite task of this test's Ray instance (whose raylet is our child)."""
    pids = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if f.read().startswith(b"ray::_ray_job") and parent(parent(int(entry))) == os.getpid():
                    pids.append(int(entry))
        except (OSError, ValueError):
            continue
    return pids


def test_a_task_whose_worker_dies_is_retried_and_the_suite_completes(ray_instance, dataset_root, tmp_path,
                                                                     monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", dataset_root)
    config = tiny_suite(methods=["sac"], seeds=1)
    killed: list[int] = []
    stop = threading.Event()

    def kill_first_worker() -> None:
        while not stop.is_set() and not killed:
            pids = ray_job_pids()
            if pids:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
            time.sleep(0.05)

    killer = threading.Thread(target=kill_first_worker)
    killer.start()
    try:
        run_suite_on_ray(config, tmp_path / "out", workers=2, console=Console(file=io.StringIO()))
    finally:
        stop.set()
        killer.join()
    assert killed
    assert (tmp_path / "out" / "runs" / ENV / "sac" / "seed0" / DONE_FILE).is_file()
    assert len(deterministic_rows(tmp_path / "out")) == 3


def test_backend_ray_without_ray_names_the_extra(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(ConfigError, match=r"skillplan\[ray\]"):
        run_suite_on_ray(tiny_suite(), tmp_path / "out", console=Console(file=io.StringIO()))
    assert not (tmp_path / "out").exists()


def test_an_unreachable_ray_address_is_named(tmp_path):
    # the address is probed with a socket before ray.init, which would otherwise retry for a minute
    with pytest.raises(ConfigError, match=r"127\.0\.0\.1:1"):
        run_suite_on_ray(tiny_suite(), tmp_path / "out", console=Console(file=io.StringIO()),
                         ray_address="127.0.0.1:1")
    assert not (tmp_path / "out").exists()


def test_a_suite_directory_the_workers_cannot_write_is_named(ray_instance, tmp_path):
    (tmp_path / "file").write_text("not a directory")
    out = tmp_path / "file" / "suite"
    with pytest.raises(ConfigError, match="cannot share the suite directory") as error:
        run_suite_on_ray(tiny_suite(), out, console=Console(file=io.StringIO()))
    assert str(out) in str(error.value)
    assert (tmp_path / "file").read_text() == "not a directory"
