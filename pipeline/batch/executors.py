"""One seam for parallelism: run per-file tasks inline, in a process pool, or on a Dask cluster.

The runner only needs :class:`Executor`: ``submit`` one call, or ``map_unordered`` a function over items
and receive ``(item, result)`` / ``(item, exception)`` pairs as tasks finish. An exception raised by a task
never stops the others; it comes back as the second element so the runner can record it on the row.

Kinds (:func:`make_executor`):

- ``"serial"`` runs everything inline in the calling thread (notebooks, debugging, tracebacks that point
  at the real line).
- ``"processes"`` is a :class:`concurrent.futures.ProcessPoolExecutor` started with the **spawn** method.
  Why spawn and not fork or forkserver: the parent is not a clean process (onnxruntime and BLAS thread
  pools, the progress-bar thread, a Dask client), and ``fork`` copies locked mutexes into children;
  ``forkserver`` would avoid that but leaves a server process running until the parent exits and is
  POSIX-only. Spawn behaves the same on Linux, macOS and Windows, leaves nothing behind after
  :meth:`close`, and matches what Dask's nanny uses. Its cost (each worker imports the package once,
  about a second) is paid once per worker per run, not per task.
  A worker killed by the OS (out of memory, a crash in a native decoder) breaks a process pool for every
  task in flight; the executor then starts a new pool and re-runs those tasks one at a time, so only the
  task that really kills its worker fails (with :class:`WorkerCrashed`).
- ``"dask"`` is a ``dask.distributed.Client`` connected to ``scheduler`` when an address is given
  (the cluster is not ours: :meth:`close` only disconnects), otherwise to a ``LocalCluster`` started for
  this executor and shut down by :meth:`close`. Nothing here starts a cluster unless ``"dask"`` is asked for.

Models load lazily once per worker: call :func:`worker_cached` inside a task (the first call in each
worker process builds the model, later calls reuse it), and/or pass ``initializer`` to warm up eagerly
when each worker starts.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import threading
import traceback
import uuid
from collections.abc import Callable, Hashable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol, TypeVar, runtime_checkable

from pipeline.errors import InvalidArgument, VoiceprepError

KINDS: tuple[str, ...] = ("serial", "processes", "dask")

START_METHOD = "spawn"
"""Multiprocessing start method of the process pool (see the module docstring for why)."""

DEFAULT_DASK_WORKERS = 2
"""Workers of the ``LocalCluster`` started when ``jobs`` is not given."""

T = TypeVar("T")


@runtime_checkable
class FutureLike(Protocol):
    """What :meth:`Executor.submit` returns: something with a blocking ``result()``."""

    def result(self, timeout: float | None = None) -> Any:
        """Block until the call finished; return its value or raise its exception."""
        ...


@runtime_checkable
class Executor(Protocol):
    """The seam the runner submits work to."""

    kind: str
    workers: int

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> FutureLike:
        """Schedule ``fn(*args, **kwargs)``; the returned future's ``result()`` gives its value."""
        ...

    def map_unordered(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[tuple[Any, Any]]:
        """Yield ``(item, fn(item))`` as tasks finish, or ``(item, exception)`` for a task that raised."""
        ...

    def close(self) -> None:
        """Release the workers (idempotent)."""
        ...

    def __enter__(self) -> Executor: ...

    def __exit__(self, *exc: object) -> None: ...


# --------------------------------------------------------------------------------------------------
# errors that travel between processes
# --------------------------------------------------------------------------------------------------


class TaskError(VoiceprepError):
    """A task raised an exception that could not be sent back between processes as itself.

    ``type_name`` is the original exception's qualified class name (what a manifest row's
    ``error_type`` should say), ``remote_traceback`` the formatted traceback from the worker.
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

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message,))


def error_type(exc: BaseException) -> str:
    """The class name to record for ``exc``: the original one for a :class:`TaskError`."""
    if isinstance(exc, TaskError):
        return exc.type_name
    return type(exc).__name__


def _portable(exc: BaseException) -> BaseException:
    """``exc`` itself when it survives pickling, else a :class:`TaskError` that says the same.

    An exception whose ``__init__`` takes other arguments than ``args`` (common for custom errors) raises
    while being *unpickled* in the parent, which a process pool treats as a broken pool for every task.
    """
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        tb = "".join(traceback.format_exception(exc))
        return TaskError(type(exc).__name__, str(exc), tb)
    return exc


def _call(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Run one task in a worker; make sure its exception can travel back (see :func:`_portable`)."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        portable = _portable(exc)
        if portable is exc:
            raise
        raise portable from None


# --------------------------------------------------------------------------------------------------
# per-worker state
# --------------------------------------------------------------------------------------------------

_WORKER_CACHE: dict[Hashable, Any] = {}
_WORKER_KEY_LOCKS: dict[Hashable, threading.RLock] = {}
_WORKER_CACHE_LOCK = threading.Lock()


def worker_cached(key: Hashable, factory: Callable[[], T]) -> T:
    """Return this process's object for ``key``, building it with ``factory()`` the first time.

    Use inside tasks for models and other expensive state: each worker process builds it once (and the
    serial executor once per session). Thread-safe: ``factory`` runs at most once per process and key,
    other keys stay available while it runs, and a factory may itself call ``worker_cached``.
    """
    with _WORKER_CACHE_LOCK:
        if key in _WORKER_CACHE:
            return _WORKER_CACHE[key]
        key_lock = _WORKER_KEY_LOCKS.setdefault(key, threading.RLock())
    with key_lock:
        if key not in _WORKER_CACHE:
            value = factory()
            with _WORKER_CACHE_LOCK:
                _WORKER_CACHE[key] = value
        return _WORKER_CACHE[key]


def _initialize(initializer: Callable[..., Any] | None, initargs: tuple[Any, ...]) -> None:
    if initializer is not None:
        initializer(*initargs)


# --------------------------------------------------------------------------------------------------
# executors
# --------------------------------------------------------------------------------------------------


class _Base:
    kind = ""
    workers = 1

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} kind={self.kind!r} workers={self.workers}>"


class SerialExecutor(_Base):
    """Runs every task inline, in order; ``submit`` returns an already finished future."""

    kind = "serial"

    def __init__(
        self, *, initializer: Callable[..., Any] | None = None, initargs: tuple[Any, ...] = ()
    ) -> None:
        self.workers = 1
        self._closed = False
        _initialize(initializer, initargs)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the executor is closed")

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Run ``fn(*args, **kwargs)`` now; return a finished future holding its value or exception."""
        self._check_open()
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:
            future.set_exception(exc)
        return future

    def map_unordered(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[tuple[Any, Any]]:
        """Yield ``(item, fn(item))`` or ``(item, exception)`` for each item, in input order, lazily."""
        self._check_open()
        for item in items:
            try:
                result = fn(item)
            except Exception as exc:
                yield item, exc
            else:
                yield item, result

    def close(self) -> None:
        """Nothing to release; later calls raise ``RuntimeError``."""
        self._closed = True


class ProcessExecutor(_Base):
    """A spawn-started process pool with crash isolation (see the module docstring)."""

    kind = "processes"

    def __init__(
        self,
        *,
        jobs: int,
        initializer: Callable[..., Any] | None = None,
        initargs: tuple[Any, ...] = (),
        max_in_flight: int | None = None,
    ) -> None:
        import multiprocessing

        self.workers = jobs
        self._context = multiprocessing.get_context(START_METHOD)
        self._initializer = initializer
        self._initargs = initargs
        self._max_in_flight = max_in_flight or 4 * jobs
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._closed = False

    def _get_pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._closed:
                raise RuntimeError("the executor is closed")
            if self._pool is None:  # started on first use: creating an unused executor costs nothing
                pool = ProcessPoolExecutor(
                    max_workers=self.workers,
                    mp_context=self._context,
                    initializer=_initialize,
                    initargs=(self._initializer, self._initargs),
                )
                if self._initializer is not None:
                    # A failing initializer breaks the pool like a crash would; find out now, once, rather
                    # than blaming (and isolating) every task.
                    try:
                        pool.submit(int).result()
                    except BrokenProcessPool as exc:
                        pool.shutdown(wait=True, cancel_futures=True)
                        raise RuntimeError(
                            f"the worker initializer {self._initializer!r} failed in a new worker process "
                            "(its traceback is in the log)"
                        ) from exc
                self._pool = pool
            return self._pool

    def _replace_broken_pool(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is broken:
                self._pool = None
        broken.shutdown(wait=True, cancel_futures=True)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Schedule ``fn(*args, **kwargs)`` in a worker process (``fn`` and arguments must pickle)."""
        return self._get_pool().submit(_call, fn, args, kwargs)

    def map_unordered(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[tuple[Any, Any]]:
        """Yield ``(item, result)`` / ``(item, exception)`` as tasks finish.

        At most ``max_in_flight`` tasks are queued at once, so a long iterator of items is consumed
        lazily. Tasks caught in a pool that broke are re-run one at a time in a fresh pool; only a task
        that kills its worker again is reported, with :class:`WorkerCrashed`.
        """
        source = iter(items)
        pending: dict[Future[Any], Any] = {}
        exhausted = False
        try:
            while True:
                while not exhausted and len(pending) < self._max_in_flight:
                    try:
                        item = next(source)
                    except StopIteration:
                        exhausted = True
                        break
                    pool = self._get_pool()
                    try:
                        pending[pool.submit(_call, fn, (item,), {})] = item
                    except BrokenProcessPool:
                        self._replace_broken_pool(pool)
                        pending[self._get_pool().submit(_call, fn, (item,), {})] = item
                if not pending:
                    return
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                suspects: list[Any] = []
                for future in done:
                    item = pending.pop(future)
                    exc = future.exception()
                    if isinstance(exc, BrokenProcessPool):
                        suspects.append(item)
                    elif exc is not None:
                        yield item, exc
                    else:
                        yield item, future.result()
                if suspects:
                    # The pool is gone: settle every task that was in it. Those that finished before the
                    # break keep their outcome; the rest are re-run one at a time in a new pool.
                    broken = self._pool
                    if broken is not None:
                        self._replace_broken_pool(broken)
                    for future, item in list(pending.items()):
                        del pending[future]
                        outcome = None if future.cancelled() else future.exception()
                        if future.cancelled() or isinstance(outcome, BrokenProcessPool):
                            suspects.append(item)
                        elif outcome is not None:
                            yield item, outcome
                        else:
                            yield item, future.result()
                    yield from self._isolate(fn, suspects)
        finally:
            for future in pending:
                future.cancel()

    def _isolate(self, fn: Callable[[Any], Any], items: list[Any]) -> Iterator[tuple[Any, Any]]:
        for item in items:
            pool = self._get_pool()
            future = pool.submit(_call, fn, (item,), {})
            exc = future.exception()
            if isinstance(exc, BrokenProcessPool):
                self._replace_broken_pool(pool)
                yield item, WorkerCrashed(f"the worker process died while running the task for {item!r}")
            elif exc is not None:
                yield item, exc
            else:
                yield item, future.result()

    def close(self) -> None:
        """Stop the workers and wait for them to exit (idempotent)."""
        with self._lock:
            pool, self._pool = self._pool, None
            self._closed = True
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor(_Base):
    """A ``dask.distributed.Client``: on an existing scheduler, or on a LocalCluster owned by this object."""

    kind = "dask"

    def __init__(
        self,
        *,
        scheduler: str | None,
        jobs: int | None,
        initializer: Callable[..., Any] | None = None,
        initargs: tuple[Any, ...] = (),
        max_in_flight: int | None = None,
    ) -> None:
        import dask
        from distributed import Client, LocalCluster

        self.cluster: Any = None
        if scheduler:
            self.client: Any = Client(scheduler)
        else:
            with dask.config.set({"distributed.nanny.pre-spawn-environ": _worker_environ()}):
                self.cluster = LocalCluster(
                    n_workers=jobs or DEFAULT_DASK_WORKERS,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    # No dashboard; the scheduler's small HTTP server (health checks) takes a free port
                    # instead of 8787, so concurrent runs on one machine neither clash nor warn.
                    scheduler_kwargs={"dashboard_address": ":0"},
                )
            try:
                self.client = Client(self.cluster)
            except BaseException:
                self.cluster.close()
                raise
        self._plugin_registered = False
        try:
            if initializer is not None:
                self.client.register_plugin(_worker_plugin(initializer, initargs))
                self._plugin_registered = True
            n = len(self.client.scheduler_info().get("workers", {}))
        except BaseException:
            self.close()
            raise
        self.workers = n or (jobs or DEFAULT_DASK_WORKERS)
        self._max_in_flight = max_in_flight or max(64, 8 * self.workers)
        self._closed = False

    @property
    def scheduler_address(self) -> str:
        """Address of the scheduler this executor talks to (give it to another client to share a cluster)."""
        return str(self.client.scheduler.address)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the executor is closed")

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Schedule ``fn(*args, **kwargs)`` on the cluster; returns a ``distributed.Future``.

        The call is wrapped, so keyword arguments named like ``Client.submit``'s own options (``key``,
        ``pure``, ``workers``...) reach ``fn``. Tasks are never treated as pure: each call runs.
        """
        self._check_open()
        return self.client.submit(_call, fn, args, kwargs, pure=False, key=_task_key(fn))

    def map_unordered(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[tuple[Any, Any]]:
        """Yield ``(item, result)`` / ``(item, exception)`` as tasks finish on the cluster.

        A task whose worker dies is retried by Dask on another worker; after Dask gives up it comes back
        as ``distributed.KilledWorker``.
        """
        from distributed import as_completed

        self._check_open()
        source = iter(items)
        pending: dict[Any, Any] = {}
        queue = as_completed()
        exhausted = False

        def top_up() -> None:
            nonlocal exhausted
            while not exhausted and len(pending) < self._max_in_flight:
                try:
                    item = next(source)
                except StopIteration:
                    exhausted = True
                    return
                future = self.client.submit(_call, fn, (item,), {}, pure=False, key=_task_key(fn))
                pending[future.key] = (item, future)
                queue.add(future)

        try:
            top_up()
            while pending:
                future = next(queue)
                item, _ = pending.pop(future.key)
                if future.status == "error":
                    exc = future.exception()
                    yield item, exc
                elif future.status == "cancelled":
                    yield item, RuntimeError(f"the task for {item!r} was cancelled")
                else:
                    yield item, future.result()
                future.release()
                top_up()
        finally:
            for _, future in pending.values():
                with contextlib.suppress(Exception):
                    future.cancel()

    def close(self) -> None:
        """Disconnect; shut down the LocalCluster if this executor started it (idempotent)."""
        self._closed = True
        client, cluster = getattr(self, "client", None), self.cluster
        if client is not None:
            if self._plugin_registered and cluster is None:
                # A shared cluster keeps plugins for workers that join later: leave it as we found it.
                with contextlib.suppress(Exception):
                    client.unregister_worker_plugin(PLUGIN_NAME)
            self._plugin_registered = False
            with contextlib.suppress(Exception):
                client.close()
        if cluster is not None:
            cluster.close()
            self.cluster = None


def _worker_environ() -> dict[str, Any]:
    """Dask's environment for new worker processes, without its ``MALLOC_TRIM_THRESHOLD_``.

    Dask sets glibc's trim threshold to 64 kB so idle workers give memory back; every freed array then
    goes back to the system and the next one is page-faulted in again: analysing a short file took 60 %
    more CPU in a Dask worker than in a process-pool worker (measured). voiceprep hands freed memory back
    itself after each task (:func:`pipeline.audio.memory.release_free_memory`), so glibc's own default serves.
    The thread limits (``OMP_NUM_THREADS=1`` ...) are kept.
    """
    import dask

    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {})
    environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    return environ


def _task_key(fn: Callable[..., Any]) -> str:
    """A unique Dask key that names the function (readable on the dashboard and in worker logs)."""
    return f"{getattr(fn, '__name__', type(fn).__name__)}-{uuid.uuid4().hex}"


PLUGIN_NAME = "voiceprep-initializer"


def _worker_plugin(initializer: Callable[..., Any], initargs: tuple[Any, ...]) -> Any:
    """A ``distributed.WorkerPlugin`` that calls ``initializer(*initargs)`` when each worker starts (or
    joins later). Built on demand so that importing this module never imports Dask."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class InitializerPlugin(WorkerPlugin):
        name = PLUGIN_NAME

        def __init__(self) -> None:
            self.initializer = initializer
            self.initargs = initargs

        def setup(self, worker: Any) -> None:
            self.initializer(*self.initargs)

    return InitializerPlugin()


def default_jobs() -> int:
    """CPUs this process may run on (the affinity mask where the OS has one, else ``os.cpu_count()``)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def make_executor(
    kind: str = "processes",
    *,
    jobs: int | None = None,
    scheduler: str | None = None,
    initializer: Callable[..., Any] | None = None,
    initargs: tuple[Any, ...] = (),
) -> Executor:
    """Build the executor for a run.

    Args:
        kind: ``"serial"``, ``"processes"`` or ``"dask"``.
        jobs: worker processes for ``"processes"`` (default: :func:`default_jobs`) and for the LocalCluster
            of ``"dask"`` (default :data:`DEFAULT_DASK_WORKERS`); ignored for ``"serial"`` and when
            connecting to an existing ``scheduler`` (its workers are what they are).
        scheduler: address of a running Dask scheduler (``tcp://host:8786``); only with ``"dask"``.
        initializer: called as ``initializer(*initargs)`` once in every worker when it starts (once in
            this process for ``"serial"``); must be picklable (a module-level function).

    Raises:
        InvalidArgument: an unknown ``kind``, ``jobs`` below 1, or ``scheduler`` with a kind other than dask.
    """
    if kind not in KINDS:
        raise InvalidArgument(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise InvalidArgument(f"jobs must be a whole number of at least 1, got {jobs!r}")
    if scheduler is not None and kind != "dask":
        raise InvalidArgument(f"scheduler={scheduler!r} needs kind='dask', got kind={kind!r}")
    if scheduler is not None and not (isinstance(scheduler, str) and scheduler.strip()):
        raise InvalidArgument(f"scheduler must be an address such as 'tcp://host:8786', got {scheduler!r}")
    if initializer is not None and not callable(initializer):
        raise InvalidArgument(f"initializer must be callable, got {initializer!r}")
    if kind == "serial":
        return SerialExecutor(initializer=initializer, initargs=initargs)
    if kind == "processes":
        return ProcessExecutor(jobs=jobs or default_jobs(), initializer=initializer, initargs=initargs)
    return DaskExecutor(scheduler=scheduler, jobs=jobs, initializer=initializer, initargs=initargs)


__all__ = (
    "KINDS",
    "START_METHOD",
    "DaskExecutor",
    "Executor",
    "FutureLike",
    "ProcessExecutor",
    "SerialExecutor",
    "TaskError",
    "WorkerCrashed",
    "default_jobs",
    "error_type",
    "make_executor",
    "worker_cached",
)
