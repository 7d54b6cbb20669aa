"""One seam for parallelism: the runner maps its tasks over any :class:`concurrent.futures.Executor`.

:func:`map_unordered` is the one loop: it keeps a bounded number of tasks in flight and yields
``(item, result)`` or ``(item, exception)`` as they finish; an exception raised by a task never stops
the others. Any executor serves, a user's own included (``client.get_executor()`` of a Dask client,
a thread pool). :func:`open_executor` builds voiceprep's three kinds:

- ``"serial"`` runs each task inline in the calling thread (notebooks, debugging, tracebacks that point
  at the real line).
- ``"processes"`` is a process pool started with the **spawn** method. Why spawn and not fork or
  forkserver: the parent is not a clean process (onnxruntime and BLAS thread pools, the progress-bar
  thread, a Dask client), and ``fork`` copies locked mutexes into children; ``forkserver`` would avoid
  that but leaves a server process running until the parent exits and is POSIX-only. Spawn behaves the
  same on Linux, macOS and Windows, leaves nothing behind, and matches what Dask's nanny uses. Its cost
  (each worker imports the package once, about a second) is paid once per worker per run, by every
  worker as the pool starts (:class:`ProcessPool`), while the first tasks run.
  Each worker keeps BLAS and OpenMP to one thread (:func:`one_thread_per_worker`): a worker is one
  task at a time on one core, and OpenBLAS's own threads (one per core by default) spin between the
  meters' small matrix products, burning the cores the other workers need.
  A worker killed by the OS (out of memory, a crash in a native decoder) breaks a process pool for every
  task in flight: the pool then replaces itself and :func:`map_unordered` re-runs those tasks one at a
  time, so only the task that really kills its worker fails (with :class:`WorkerCrashed`).
- ``"dask"`` is the executor of a ``dask.distributed.Client`` connected to ``scheduler`` when an address
  is given (the cluster is not ours: leaving only disconnects), otherwise to a ``LocalCluster`` started
  for the run and shut down after it, without the periodic work of a dashboard no one looks at
  (:data:`LOCAL_CLUSTER_CONFIG`). Nothing here starts a cluster unless ``"dask"`` is asked for.

Models load lazily once per worker process (module-level caches in :mod:`pipeline.analysis`).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from pipeline.errors import InvalidArgument, VoiceprepError

KINDS: tuple[str, ...] = ("serial", "processes", "dask")

START_METHOD = "spawn"
"""Multiprocessing start method of the process pool (see the module docstring for why)."""

DEFAULT_DASK_WORKERS = 2
"""Workers of the ``LocalCluster`` started when ``jobs`` is not given."""

ONE_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
"""Environment variables that keep a worker's BLAS and OpenMP pools to one thread."""

LOCAL_CLUSTER_CONFIG: dict[str, Any] = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
}
"""Dask settings of the LocalCluster a run starts (never of a cluster it connects to): what its periodic
work costs for a dashboard no one looks at. The worker's statistical profiler takes every task thread's
stack (and the GIL) every 10 ms; every server (the scheduler, each nanny and worker) checks its event
loop every 20 ms and reads the system's CPU, memory and I/O every 0.5 s. On 100 short files, two workers,
the loaded machine: workers' CPU 73-78 -> 62 s (a process pool: 59), the main process (scheduler and
nannies) 13.6-15.7 -> 9.5 s (``BENCHMARKS.md``, scaling). Heartbeats, the nannies' memory limits and
the replacement of a dead worker are untouched."""

DEFAULT_IN_FLIGHT = 64
"""Tasks queued at once by :func:`map_unordered` when the caller does not say."""


# --------------------------------------------------------------------------------------------------
# errors that travel between processes
# --------------------------------------------------------------------------------------------------


class TaskError(VoiceprepError):
    """A task raised an exception that could not be sent back between processes as itself.

    ``type_name`` is the original exception's class name (what a manifest row's ``error_type`` should
    say), ``remote_traceback`` the formatted traceback from the worker.
    """

    def __init__(self, type_name: str, message: str, remote_traceback: str = "") -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name
        self.message = message
        self.remote_traceback = remote_traceback

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.type_name, self.message, self.remote_traceback))


class WorkerCrashed(VoiceprepError):
    """The worker process running this task died (killed by the OS, or a crash in native code)."""


def error_type(exc: BaseException) -> str:
    """The class name to record for ``exc``: the original one for a :class:`TaskError`."""
    if isinstance(exc, TaskError):
        return exc.type_name
    return type(exc).__name__


def portable(exc: Exception) -> Exception:
    """``exc`` itself when it survives pickling, else a :class:`TaskError` that says the same.

    An exception whose ``__init__`` takes other arguments than ``args`` (common for custom errors) raises
    while being *unpickled* in the parent, which a process pool treats as a broken pool for every task.
    """
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return TaskError(type(exc).__name__, str(exc), "".join(traceback.format_exception(exc)))
    return exc


def _call(fn: Callable[[Any], Any], item: Any) -> Any:
    """Run one task in a worker, making sure its exception can travel back (:func:`portable`)."""
    try:
        return fn(item)
    except Exception as exc:
        sent = portable(exc)
        if sent is exc:
            raise
        raise sent from None


# --------------------------------------------------------------------------------------------------
# executors
# --------------------------------------------------------------------------------------------------


class InlineExecutor(Executor):
    """Runs each task when it is submitted, in the calling thread; returns an already finished future."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Run ``fn(*args, **kwargs)`` now; the future holds its value or its exception."""
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:
            future.set_exception(exc)
        return future


def one_thread_per_worker() -> None:
    """Limit this process's BLAS and OpenMP thread pools to one thread (a process-pool worker's initializer).

    Measured on 500 short files, two workers on two cores: with OpenBLAS's default threads the workers
    spent 171 s of CPU for 125 s of work (the same files on one pinned core) and the run took 93.6 s; with
    one thread 121 s of CPU and 67.6 s (``BENCHMARKS.md``, scaling). Dask's workers get the same limit from
    its ``pre-spawn-environ`` (``OMP_NUM_THREADS=1`` ...).
    """
    from threadpoolctl import threadpool_limits

    for name in ONE_THREAD_VARIABLES:  # libraries this worker loads later read them ...
        os.environ[name] = "1"
    threadpool_limits(
        limits=1
    )  # ... and those it has loaded already (numpy, through the main module) are told


def start_worker(preload: tuple[str, ...] = ()) -> None:
    """A process-pool worker's initializer: :func:`one_thread_per_worker`, then import ``preload``."""
    import importlib

    one_thread_per_worker()
    for name in preload:
        importlib.import_module(name)


def _started() -> int:
    """The first task of every worker (:class:`ProcessPool`): nothing but being started."""
    return os.getpid()


class ProcessPool(Executor):
    """A spawn-started process pool that starts on first use and replaces itself when a worker dies.

    Every worker is started with the pool and imports ``preload`` (module names) as it starts. A
    ``ProcessPoolExecutor`` starts a worker only when a task finds none idle: a run whose first stage is
    one long task (one recording) would start the second worker, and pay its imports (about 2 s), only
    when the second stage begins, on that stage's critical path; started early, it imports while the
    first worker analyses.
    """

    def __init__(self, jobs: int, *, preload: tuple[str, ...] = ()) -> None:
        import multiprocessing

        self.workers = jobs
        self.preload = tuple(preload)
        self._context = multiprocessing.get_context(START_METHOD)
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Schedule ``fn(*args, **kwargs)`` in a worker (``fn`` and its arguments must pickle)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the executor is shut down")
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=self.workers,
                    mp_context=self._context,
                    initializer=start_worker,
                    initargs=(self.preload,),
                )
                for _ in range(self.workers):  # each finds no idle worker, so each starts one
                    self._pool.submit(_started)
            pool = self._pool
        try:
            return pool.submit(fn, *args, **kwargs)
        except BrokenProcessPool:  # a worker died: the tasks in flight fail, new ones get a new pool
            with self._lock:
                if self._pool is pool:
                    self._pool = None
            pool.shutdown(wait=True, cancel_futures=True)
            return self.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop the workers (idempotent); later submits raise ``RuntimeError``."""
        with self._lock:
            pool, self._pool = self._pool, None
            self._closed = True
        if pool is not None:
            pool.shutdown(wait=wait, cancel_futures=cancel_futures)


def default_jobs() -> int:
    """CPUs this process may run on (the affinity mask where the OS has one, else ``os.cpu_count()``)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def open_executor(
    kind: str = "processes",
    *,
    jobs: int | None = None,
    scheduler: str | None = None,
    preload: tuple[str, ...] = (),
) -> Iterator[Executor]:
    """One of voiceprep's executors, released when the ``with`` block ends.

    Args:
        kind: ``"serial"``, ``"processes"`` or ``"dask"``.
        jobs: worker processes for ``"processes"`` (default: :func:`default_jobs`) and for the LocalCluster
            of ``"dask"`` (default :data:`DEFAULT_DASK_WORKERS`); ignored for ``"serial"`` and when
            connecting to an existing ``scheduler`` (its workers are what they are).
        scheduler: address of a running Dask scheduler (``tcp://host:8786``); only with ``"dask"``.
        preload: modules each process-pool worker imports as it starts (:class:`ProcessPool`).

    Raises:
        InvalidArgument: an unknown ``kind``, ``jobs`` below 1, or ``scheduler`` with a kind other than dask.
    """
    if kind not in KINDS:
        raise InvalidArgument(f"executor must be one of {', '.join(KINDS)}, got {kind!r}")
    if jobs is not None and jobs < 1:
        raise InvalidArgument(f"jobs must be at least 1, got {jobs}")
    if scheduler is not None and kind != "dask":
        raise InvalidArgument(f"scheduler={scheduler!r} needs the dask executor, not {kind!r}")
    if kind == "serial":
        yield InlineExecutor()
    elif kind == "processes":
        pool = ProcessPool(jobs or default_jobs(), preload=preload)
        try:
            yield pool
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    else:
        with _dask_client(scheduler, jobs) as client:
            yield client.get_executor(pure=False)


@contextlib.contextmanager
def _dask_client(scheduler: str | None, jobs: int | None) -> Iterator[Any]:
    """A client of the cluster at ``scheduler``, or of a LocalCluster that lives as long as the block."""
    import dask
    from distributed import Client, LocalCluster

    if scheduler:
        client = Client(scheduler)
        try:
            yield client
        finally:
            client.close()
        return
    settings = {**LOCAL_CLUSTER_CONFIG, "distributed.nanny.pre-spawn-environ": _worker_environ()}
    with dask.config.set(settings):  # read when the scheduler, nannies and workers are made
        cluster = LocalCluster(
            n_workers=jobs or DEFAULT_DASK_WORKERS,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            # No dashboard; the scheduler's small HTTP server (health checks) takes a free port instead
            # of 8787, so concurrent runs on one machine neither clash nor warn.
            scheduler_kwargs={"dashboard_address": ":0"},
        )
        try:
            client = Client(cluster)
        except BaseException:
            cluster.close()
            raise
    try:
        with client:
            yield client
    finally:
        cluster.close()


def _worker_environ() -> dict[str, Any]:
    """Dask's environment for new worker processes, without its ``MALLOC_TRIM_THRESHOLD_``.

    Dask sets glibc's trim threshold to 64 kB so idle workers give memory back; every freed array then
    goes back to the system and the next one is page-faulted in again: analysing a short file took 60 %
    more CPU in a Dask worker than in a process-pool worker (measured). voiceprep hands freed memory back
    itself after each task (:func:`pipeline.audio.memory.release_free_memory`), so glibc's own default
    serves. The thread limits (``OMP_NUM_THREADS=1`` ...) are kept.
    """
    import dask

    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {})
    environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    return environ


# --------------------------------------------------------------------------------------------------
# the one loop
# --------------------------------------------------------------------------------------------------


def map_unordered(
    executor: Executor, fn: Callable[[Any], Any], items: Iterable[Any], *, max_in_flight: int | None = None
) -> Iterator[tuple[Any, Any]]:
    """Yield ``(item, fn(item))``, or ``(item, exception)`` for a task that raised, as tasks finish.

    At most ``max_in_flight`` tasks (default :data:`DEFAULT_IN_FLIGHT`) are queued at once, so a long
    iterator of items is consumed lazily. A task caught in a process pool that broke (a worker died) is
    re-run alone once the others have settled; a task that kills its worker again is reported with
    :class:`WorkerCrashed`. ``fn`` and the items must pickle for executors that use other processes.
    """
    limit = max_in_flight or DEFAULT_IN_FLIGHT
    source = iter(items)
    pending: dict[Future[Any], Any] = {}
    suspects: list[Any] = []
    try:
        while True:
            for item in source:
                pending[executor.submit(_call, fn, item)] = item
                if len(pending) >= limit:
                    break
            if not pending:
                break
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in [f for f in pending if f in done]:  # in submission order (inline: input order)
                item = pending.pop(future)
                exc = None if future.cancelled() else future.exception()
                if future.cancelled() or isinstance(exc, BrokenProcessPool):
                    suspects.append(item)
                else:
                    yield item, (exc if exc is not None else future.result())
        for item in suspects:
            future = executor.submit(_call, fn, item)
            exc = future.exception()
            if isinstance(exc, BrokenProcessPool):
                yield item, WorkerCrashed(f"the worker process died while running the task for {item!r}")
            else:
                yield item, (exc if exc is not None else future.result())
    finally:
        for future in pending:
            future.cancel()


__all__ = (
    "KINDS",
    "START_METHOD",
    "InlineExecutor",
    "ProcessPool",
    "TaskError",
    "WorkerCrashed",
    "default_jobs",
    "error_type",
    "map_unordered",
    "open_executor",
    "portable",
    "start_worker",
)
