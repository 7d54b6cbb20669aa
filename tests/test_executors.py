"""The parallelism seam: serial, process pool and Dask LocalCluster give the same answers and fail alike.

One executor of each kind is shared by the module (the Dask LocalCluster starts once). Task functions are
stdlib or pipeline functions where possible, so every worker can import them; the few helpers defined here
are pickled by value for Dask (its workers cannot import this test module).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cloudpickle
import psutil
import pytest
from _corpus import corpus_file

from pipeline.audio.io import probe
from pipeline.batch.executors import (
    ONE_THREAD_VARIABLES,
    InlineExecutor,
    ProcessPool,
    WorkerCrashed,
    error_type,
    map_unordered,
    open_executor,
)
from pipeline.batch.manifest import fingerprint
from pipeline.errors import AudioReadError, InvalidArgument

cloudpickle.register_pickle_by_value(sys.modules[__name__])

KIND_PARAMS = ["serial", "processes", "dask"]


# --- task helpers (run inside workers) -------------------------------------------------------------


def _square_or_die(item: int) -> int:
    if item == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    return item * item


def _pid(_: object = None) -> int:
    return os.getpid()


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _blas_threads(_: object = None) -> list[int]:
    import numpy  # noqa: F401 (loads OpenBLAS)
    from threadpoolctl import threadpool_info

    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def executors() -> Iterator[dict]:
    """One executor per kind, open for the whole module (the Dask LocalCluster starts once)."""
    with contextlib.ExitStack() as stack:
        yield {kind: stack.enter_context(open_executor(kind, jobs=2)) for kind in KIND_PARAMS}


@pytest.fixture(params=KIND_PARAMS)
def executor(request: pytest.FixtureRequest, executors: dict):
    return executors[request.param]


def _map(executor, fn, items):
    return map_unordered(executor, fn, items)


# --- same answers ---------------------------------------------------------------------------------


def test_every_kind_gives_each_result_once(executor) -> None:
    got = list(_map(executor, math.factorial, range(15)))
    assert sorted(item for item, _ in got) == list(range(15))
    assert dict(got) == {i: math.factorial(i) for i in range(15)}


def test_kinds_agree_on_pipeline_work_over_real_recordings(executors: dict) -> None:
    arctic = corpus_file("speech", "pra_cmu_arctic_us_aew_a0001.wav")
    arctic_path = str(arctic)
    paths = sorted(str(p) for p in arctic.parent.iterdir() if p.suffix in {".wav", ".flac"})[:5]
    paths = sorted({*paths, arctic_path})
    by_kind = {kind: dict(_map(ex, probe, paths)) for kind, ex in executors.items()}
    assert by_kind["serial"] == by_kind["processes"] == by_kind["dask"]
    for path, info in by_kind["dask"].items():
        assert info.sha256 == hashlib.sha256(Path(path).read_bytes()).hexdigest()
    arctic = by_kind["processes"][arctic_path]
    # 16-bit mono WAV with a 44-byte header: the frame count follows from the file size.
    assert (arctic.sample_rate, arctic.channels, arctic.frames) == (16000, 1, (arctic.bytes - 44) // 2)

    rows = [{"b": i, "a": [i, i / 3]} for i in range(5)]
    prints = {kind: sorted(fp for _, fp in _map(ex, fingerprint, rows)) for kind, ex in executors.items()}
    assert prints["serial"] == prints["processes"] == prints["dask"]
    assert len(set(prints["serial"])) == 5


def test_results_are_yielded_as_tasks_finish(executor) -> None:
    if isinstance(executor, InlineExecutor):
        order = [item for item, _ in _map(executor, time.sleep, [0.3, 0.0, 0.01])]
        assert order == [0.3, 0.0, 0.01]  # inline: input order
    else:
        order = [item for item, _ in _map(executor, time.sleep, [1.5, 0.0, 0.01])]
        assert sorted(order) == [0.0, 0.01, 1.5]
        assert order[0] != 1.5  # a quick task on the other worker is yielded before the slow one ends


# --- failures -------------------------------------------------------------------------------------


def test_an_exception_in_one_task_does_not_stop_the_others(executor) -> None:
    got = dict(_map(executor, int, ["1", "2", "x", "4", "5"]))
    assert {k: v for k, v in got.items() if k != "x"} == {"1": 1, "2": 2, "4": 4, "5": 5}
    assert isinstance(got["x"], ValueError)
    assert "'x'" in str(got["x"])


def test_a_corrupt_file_comes_back_as_an_error_naming_its_type(executor, tmp_path: Path) -> None:
    # AudioReadError pickles by (reason, message), so it comes back from any worker as itself, reason
    # code intact: the runner turns it into a failed row with that reason.
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio" * 10)
    good = str(corpus_file("speech", "pra_cmu_arctic_us_axb_a0004.wav"))
    got = dict(_map(executor, probe, [str(bad), good]))
    assert got[good].sample_rate == 16000
    exc = got[str(bad)]
    assert isinstance(exc, Exception)
    assert error_type(exc) == "AudioReadError"
    assert "decode_failed" in str(exc)
    assert isinstance(exc, AudioReadError)
    assert exc.reason == "decode_failed"


def test_a_worker_killed_mid_task_fails_only_that_task(executors: dict) -> None:
    ex = executors["processes"]
    got = dict(_map(ex, _square_or_die, range(8)))
    assert {k: v for k, v in got.items() if k != 3} == {i: i * i for i in range(8) if i != 3}
    assert isinstance(got[3], WorkerCrashed)
    # the executor replaced its pool and keeps working
    assert ex.submit(math.factorial, 5).result() == 120


# --- shutdown -------------------------------------------------------------------------------------


def test_process_pool_close_stops_its_workers() -> None:
    with open_executor("processes", jobs=2) as ex:
        pids = {r for _, r in _map(ex, _pid, range(6))}
        assert pids and os.getpid() not in pids
        assert all(_alive(p) for p in pids)
    assert not any(_alive(p) for p in pids)
    assert not {c.pid for c in multiprocessing.active_children()} & pids
    with pytest.raises(RuntimeError, match="shut down"):
        ex.submit(_pid)


def _environ(names: list[str]) -> dict[str, str | None]:
    return {n: os.environ.get(n) for n in names}


def test_dask_local_cluster_close_shuts_its_workers() -> None:
    with open_executor("dask", jobs=1) as ex:
        client = ex._client
        workers = set(client.run(_pid).values())
        assert len(workers) == 1 and os.getpid() not in workers
        assert ex.submit(math.factorial, 6).result() == 720
        # Dask's 64 kB malloc trim threshold (60 % more CPU per short file) is not passed on; its
        # thread limits are.
        env = next(iter(client.run(_environ, ["MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS"]).values()))
        assert env["MALLOC_TRIM_THRESHOLD_"] == os.environ.get("MALLOC_TRIM_THRESHOLD_")
        assert env["OMP_NUM_THREADS"] == "1"
        cluster = client.cluster
        assert all(_alive(p) for p in workers)
    assert client.status == "closed"
    assert cluster.status.name == "closed"
    assert not any(_alive(p) for p in workers)
    assert not {c.pid for c in multiprocessing.active_children()} & workers


def test_dask_with_a_scheduler_address_uses_that_cluster_and_leaves_it_running(executors: dict) -> None:
    owner = executors["dask"]._client
    worker_pids = set(owner.run(_pid).values())
    with open_executor("dask", scheduler=owner.scheduler.address, jobs=7) as guest:
        assert guest._client.cluster is None
        assert len(guest._client.scheduler_info()["workers"]) == 2  # the cluster's workers, not ``jobs``
        got = dict(_map(guest, _pid, range(6)))
        assert set(got.values()) <= worker_pids
    assert guest._client.status == "closed"
    assert owner.submit(math.factorial, 4).result() == 24
    assert all(_alive(p) for p in worker_pids)


def test_any_concurrent_futures_executor_serves_the_loop() -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        got = dict(_map(pool, int, ["1", "x", "3"]))
    assert got["1"] == 1 and got["3"] == 3 and isinstance(got["x"], ValueError)


# --- arguments ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"kind": "threads"}, "threads"),
        ({"kind": "processes", "jobs": 0}, "jobs"),
        ({"kind": "serial", "scheduler": "tcp://127.0.0.1:8786"}, "scheduler"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict, named: str) -> None:
    kind = kwargs.pop("kind")
    with pytest.raises(InvalidArgument, match=named), open_executor(kind, **kwargs):
        pass


def test_process_pool_workers_keep_blas_to_one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker is one task on one core: OpenBLAS's own threads (one per core) would spin on the other
    workers' cores. The environment is cleared first (a Dask LocalCluster sets the limits in this process's
    environment too), so only the pool's own initializer can make it one."""
    for name in ONE_THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    with open_executor("processes", jobs=1) as pool:
        [(_, threads)] = list(map_unordered(pool, _blas_threads, [0]))
    assert threads and set(threads) == {1}


def test_serial_is_lazy_and_processes_default_to_the_usable_cpus() -> None:
    pulled: list[int] = []

    def items() -> Iterator[int]:
        for i in range(100):
            pulled.append(i)
            yield i

    with open_executor("serial") as ex:
        stream = map_unordered(ex, math.factorial, items(), max_in_flight=1)
        assert next(stream) == (0, 1)
        assert pulled == [0]
    with open_executor("processes") as ex:
        assert isinstance(ex, ProcessPool)
        assert ex.workers == len(os.sched_getaffinity(0))


def _periodic_work(dask_worker: Any = None, dask_scheduler: Any = None) -> dict[str, Any]:
    server = dask_worker or dask_scheduler
    return {"profiler": "profile" in server.periodic_callbacks, "tick_s": server._tick_interval}


def test_dask_local_cluster_runs_without_the_dashboards_periodic_work(executors: dict) -> None:
    """No statistical profiler in the workers, event loops checked every second (not every 20 ms); a
    worker killed mid-task is still replaced by its nanny and the cluster keeps its two workers."""
    client = executors["dask"]._client
    workers = client.run(_periodic_work)
    assert len(workers) == 2
    assert all(w == {"profiler": False, "tick_s": 1.0} for w in workers.values())
    assert client.run_on_scheduler(_periodic_work)["tick_s"] == 1.0
    victim = next(iter(client.run(_pid).values()))
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):  # a worker may be on its way out or in
            pids = set(client.run(_pid).values())
            if len(pids) == 2 and victim not in pids:
                break
        time.sleep(0.2)
    else:
        pytest.fail("the killed worker was not replaced within 60 s")
    assert client.submit(math.factorial, 5, pure=False).result() == 120


def _modules(names: list[str]) -> list[bool]:
    return [name in sys.modules for name in names]


def test_process_pool_starts_every_worker_at_once_with_its_preloaded_modules() -> None:
    """One long first task must not leave the second worker unstarted until the next stage."""
    names = ["pipeline.selection.select", "pipeline.render.clip"]
    with open_executor("processes", jobs=2, preload=tuple(names)) as ex:
        assert ex.submit(_modules, names).result() == [True, True]
        started = [p.pid for p in ex._pool._processes.values()]  # after one task: both workers
        assert len(started) == 2 and all(_alive(p) for p in started)
