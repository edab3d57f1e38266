"""A bounded pool for model inference, so request latency cannot grow without bound under load.

At most `workers` images run at once (each run already uses every core through ONNX Runtime's own
threads) and at most `queue_size` more wait; a request beyond that is refused at once with an estimate
of when to retry, which a client can act on, instead of waiting in an ever-growing queue.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from feedlens.core.errors import FeedlensError

T = TypeVar("T")


class ServerBusyError(FeedlensError):
    code = "server_busy"
    http_status = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"all inference workers are busy and the queue is full; retry in {retry_after} s")
        self.retry_after = retry_after


class InferenceGate:
    def __init__(self, workers: int, queue_size: int) -> None:
        self.workers = workers
        self.capacity = workers + queue_size
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="inference")
        self._lock = threading.Lock()
        self._admitted = 0
        self._mean_seconds = 0.2  # running estimate of one call, for Retry-After

    @property
    def admitted(self) -> int:
        return self._admitted

    def _admit(self) -> None:
        with self._lock:
            if self._admitted >= self.capacity:
                wait = self._mean_seconds * self._admitted / self.workers
                raise ServerBusyError(max(1, math.ceil(wait)))
            self._admitted += 1

    def _release(self, seconds: float) -> None:
        with self._lock:
            self._admitted -= 1
            self._mean_seconds = 0.9 * self._mean_seconds + 0.1 * seconds

    async def run_coalesced(self, submit: Callable[[], Future[T]], drain: Callable[[], object]) -> T:
        """Admit a request, `submit` its item to a shared queue and schedule one `drain` of that queue on
        an inference thread; then wait for the item's own future, not for that drain: an earlier drain
        may take the item along with others, and the answer should go out as soon as it is ready."""
        self._admit()
        start = time.perf_counter()
        try:
            future = submit()
            self._executor.submit(drain)
            return await asyncio.wrap_future(future)
        finally:
            self._release(time.perf_counter() - start)

    async def run(self, fn: Callable[[], T]) -> T:
        """Run `fn` on an inference thread, or raise ServerBusyError at once if the queue is full."""
        self._admit()
        start = time.perf_counter()
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn)
        finally:
            self._release(time.perf_counter() - start)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
