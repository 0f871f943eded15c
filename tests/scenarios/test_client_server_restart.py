"""A client copes with gearmand being killed and restarted while it waits for a result.

gearmand's built-in queue lives in memory, so a restarted server has forgotten every job and
will never send the result a client is waiting for. A client that keeps waiting hangs forever.
A client that quietly submits again may run a job with side effects twice. A client object that
keeps its dead socket fails every later call. Here the waiting request must end with
ConnectionLostError within 2 s of the kill, whether or not it has a time limit. The job's handler
must run at most once. A background submission while the server is down must fail within 2 s.
After the restart the same client object must run a new job within 2 s.
"""

from __future__ import annotations

import time
from typing import Any

import gevent
import pytest
from client_helpers import serving, sleep_until, wait_until

from geargevent import (
    JOB_COMPLETE,
    JOB_FAILED,
    ConnectionLostError,
    GearmanClient,
    GearmanJob,
    GearmanWorker,
    ServerUnavailableError,
)
from geargevent.testing import GearmandProcess

SLOW = "restart.slow"

# Time from the kill until the waiting request must have ended, and limits for the
# submissions made while the server is down and after it is back.
END_AFTER_KILL_SECONDS = 2.0
DOWN_SUBMIT_SECONDS = 2.0
AFTER_RESTART_SECONDS = 2.0


class QuickReconnectWorker(GearmanWorker):
    """Retries the restarted server at least once a second.

    The default backoff may wait up to 5 s between attempts. This scenario checks the client,
    so the worker must not be the reason the job after the restart is slow.
    """

    reconnect_delay_min = 0.1
    reconnect_delay_max = 1.0


@pytest.mark.parametrize("poll_timeout", [None, 10.0], ids=["no-time-limit", "time-limit-10s"])
def test_client_survives_server_restart(
    gearmand: GearmandProcess, poll_timeout: float | None
) -> None:
    calls: list[bytes] = []

    def slow(worker: GearmanWorker, job: GearmanJob) -> bytes:
        calls.append(job.data)
        gevent.sleep(float(job.data))
        return b"done:" + job.data

    client = GearmanClient([gearmand.address], connect_timeout=1.0)
    try:
        with serving(gearmand, {SLOW: slow}, max_jobs=2, worker_class=QuickReconnectWorker):
            start = time.monotonic()
            first = gevent.spawn(client.submit_job, SLOW, b"3", poll_timeout=poll_timeout)
            wait_until(lambda: calls, 2.0, "the first job did not start")

            sleep_until(start + 1.0)
            killed_at = time.monotonic()
            gearmand.kill()
            first.join(END_AFTER_KILL_SECONDS - (time.monotonic() - killed_at))
            assert first.ready(), "the waiting request did not end after gearmand was killed"
            ended_after = time.monotonic() - killed_at
            request = first.get()

            down_started = time.monotonic()
            with pytest.raises(ServerUnavailableError) as down_error:
                client.submit_job(SLOW, b"0", background=True, poll_timeout=10)
            down_seconds = time.monotonic() - down_started

            sleep_until(start + 2.0)
            gearmand.start()

            sleep_until(start + 3.0)
            second_started = time.monotonic()
            second = gevent.spawn(client.submit_job, SLOW, b"0", poll_timeout=poll_timeout)
            second.join(AFTER_RESTART_SECONDS + 1.0)
            assert second.ready(), "the job after the restart did not finish"
            second_seconds = time.monotonic() - second_started
            after_restart: Any = second.get()
    finally:
        client.close()

    assert request.state == JOB_FAILED
    assert not request.complete
    assert isinstance(request.error, ConnectionLostError)
    assert request.result is None
    assert ended_after < END_AFTER_KILL_SECONDS

    assert gearmand.address in str(down_error.value)
    assert down_seconds < DOWN_SUBMIT_SECONDS

    assert after_restart.state == JOB_COMPLETE
    assert after_restart.result == b"done:0"
    assert second_seconds < AFTER_RESTART_SECONDS

    # The killed job was never run again, by the client or by the restarted server.
    assert calls.count(b"3") == 1
    assert calls.count(b"0") == 1
