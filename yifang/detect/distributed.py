"""The engine's batches on a Dask cluster (``dask.distributed``), for sets beyond one machine.

:func:`dask_runner` makes a runner for :func:`yifang.detect.engine.run_detection`: each batch
job (:class:`yifang.detect.engine.BatchJob`, small and picklable) is sent to the cluster,
evaluated there by :func:`yifang.detect.engine.evaluate_batch`, and its alarms come back; the
signals are written here, in the jobs' order, so a run gives the same signals as a local
one. At most ``in_flight`` jobs are on the cluster at a time, so the memory of this process
stays bounded by the batch too.

Batches of the card table travel with their (sparse) counts; batches of an ``.npy`` file
carry only the file name and their slice, so the file must be readable at the same path on
every worker (a shared file system).

Dask is imported inside the functions: the library loads without it.

    from yifang.detect.distributed import dask_runner, local_client
    with local_client(n_workers=2) as client:
        run_detection(session, as_of=day, runner=dask_runner(client))
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

J = TypeVar("J")
R = TypeVar("R")


class DaskRunner:
    """Runs ``fn`` over jobs on a Dask cluster, yielding results in the jobs' order."""

    def __init__(self, client: Any, in_flight: int | None = None) -> None:
        self.client = client
        self.in_flight = in_flight

    def _window(self) -> int:
        if self.in_flight is not None:
            return max(1, int(self.in_flight))
        threads = sum(self.client.nthreads().values()) or 1
        return 2 * threads

    def __call__(self, fn: Callable[[J], R], jobs: Iterable[J]) -> Iterator[R]:
        window = self._window()
        pending: deque[Any] = deque()
        for job in jobs:
            pending.append(self.client.submit(fn, job, pure=False))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def dask_runner(
    client: Any = None, *, address: str | None = None, in_flight: int | None = None
) -> DaskRunner:
    """A runner on ``client`` (a ``distributed.Client``) or on the scheduler at ``address``.

    ``in_flight`` caps the jobs on the cluster at once (default: twice its threads).
    """
    if client is None:
        from distributed import Client

        if address is None:
            raise ValueError("dask_runner needs a client or a scheduler address")
        client = Client(address)
    return DaskRunner(client, in_flight)


@contextmanager
def local_client(
    n_workers: int = 2, threads_per_worker: int = 1, processes: bool = True
) -> Iterator[Any]:
    """A ``distributed.Client`` on a ``LocalCluster`` of this machine, closed on exit."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=n_workers,
            threads_per_worker=threads_per_worker,
            processes=processes,
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client
