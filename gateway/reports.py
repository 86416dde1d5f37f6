"""Delivery reports: a scheduler thread claims due reports from the store, worker threads post them.

A report is posted only for messages sent with a ``webhook_url``; it counts as delivered on any 2xx
answer, otherwise the store schedules a retry with backoff (see :meth:`gateway.store.Store.record_report_results`).
Reports claimed but not posted when the server stops are requeued by the next start.
"""

from __future__ import annotations

import collections
import http.client
import json
import logging
import queue
import sqlite3
import threading
import time

from .callbacks import CallbackClient
from .protocol import utc_now_iso
from .settings import RuntimeSettings
from .store import ReportJob, ReportResult, Store

_logger = logging.getLogger("sms_gateway")


class ReportDispatcher:
    """Polls the store for due delivery reports and posts them with a small pool of worker threads.

    Claims and results are written in batches (one transaction per poll), never one commit per report.
    """

    def __init__(self, store: Store, settings: RuntimeSettings, workers: int = 4, poll_interval: float = 0.1):
        """Prepare (without starting) a dispatcher with ``workers`` posting threads."""
        self.store = store
        self.settings = settings
        self.poll_interval = poll_interval
        self.max_queued = 2000
        self._jobs: queue.Queue[ReportJob] = queue.Queue()
        self._results: collections.deque[ReportResult] = collections.deque()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._schedule_loop, name="reports-scheduler", daemon=True)]
        self._threads += [
            threading.Thread(target=self._post_loop, name=f"reports-worker-{index}", daemon=True)
            for index in range(workers)
        ]

    def start(self) -> None:
        """Requeue reports left pending by a previous run and start the threads."""
        requeued = self.store.requeue_pending_reports()
        if requeued:
            _logger.info("requeued %d delivery reports left pending by a previous run", requeued)
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the threads (waiting at most ``timeout`` seconds overall) and record the last results.

        Reports still queued stay ``pending`` in the database and are requeued by the next :meth:`start`.
        """
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._flush_results()

    def _schedule_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._flush_results()
                room = self.max_queued - self._jobs.qsize()
                if room > 0:
                    for job in self.store.claim_due_reports(time.time(), room, self.settings.draw_report):
                        self._jobs.put(job)
            except sqlite3.Error:
                _logger.exception("delivery-report scheduler: database error, retrying")
            self._stop.wait(self.poll_interval)

    def _flush_results(self) -> None:
        batch = []
        while self._results and len(batch) < 10_000:
            batch.append(self._results.popleft())
        if batch:
            self.store.record_report_results(batch)

    def _post_loop(self) -> None:
        client = CallbackClient()
        try:
            while not self._stop.is_set():
                try:
                    job = self._jobs.get(timeout=0.2)
                except queue.Empty:
                    continue
                self._results.append(self._post(client, job))
        finally:
            client.close()

    @staticmethod
    def _post(client: CallbackClient, job: ReportJob) -> ReportResult:
        at = utc_now_iso()
        body = json.dumps({"uuid": job.uuid, "state": job.state, "at": at}, separators=(",", ":")).encode()
        posted, error = 0, None
        for _copy in range(job.copies):
            try:
                status = client.post(job.url, body, job.secret)
            except (OSError, http.client.HTTPException, ValueError) as exc:
                error = f"{type(exc).__name__}: {exc}"
                break
            if not 200 <= status < 300:
                error = f"HTTP {status}"
                break
            posted += 1
        if posted == 0:
            _logger.info("delivery report %s to %s failed (attempt %d): %s", job.uuid, job.url, job.attempt, error)
        return ReportResult(job.uuid, posted, job.attempt, at, error)
