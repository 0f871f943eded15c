"""The benchmark scenarios S1 to S6 and the profile of geargevent's echo path.

Each scenario function takes a :class:`Context` and returns plain dicts for the
JSON results. A run that cannot finish in its time limit is recorded with
``status: "timeout"`` and the rate over the jobs it did finish. A run whose
process failed is recorded with ``status: "error"`` and the reason, and the
other runs go on.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import signal
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import (
    GEARMAND_DEFAULT_BUCKETS_ARGS,
    BenchError,
    Child,
    JobServer,
    ProcessRegistry,
    SystemLoad,
    cpu_seconds_between,
    cpu_seconds_stat,
    load_jobs,
    pin_process,
    rss_bytes,
    thread_cpu_ns,
    wait_for_drain,
)

log = logging.getLogger("bench")

BENCH_DIR = Path(__file__).resolve().parent

GEARGEVENT = "geargevent"
PYGEARMAN = "pygearman"
GEAR = "gear"
C_WORKER = "libgearman"
BARE = "bare"

SERIAL_IMPLEMENTATIONS = (GEARGEVENT, PYGEARMAN, GEAR, C_WORKER, BARE)
POOL_IMPLEMENTATIONS = (GEARGEVENT, PYGEARMAN, GEAR, C_WORKER)

# The way each implementation runs a pool of jobs in S2, shown in the report.
POOL_METHODS = {
    GEARGEVENT: "1 connection, max_jobs=pool, gevent.sleep",
    PYGEARMAN: "pool connections, one GearmanWorker each, in greenlets (monkey-patched), "
    "gevent.sleep",
    GEAR: "1 connection, pool threads calling getJob(), time.sleep",
    C_WORKER: "pool threads, each with its own gearman_worker_st, usleep",
}

# Placements of S1: CPUs for the worker and for gearmand plus the loader and
# this driver. None leaves the scheduler free.
PINNED = "pinned"
UNPINNED = "unpinned"
PLACEMENTS: dict[str, tuple[list[int] | None, list[int] | None]] = {
    PINNED: ([1], [0]),
    UNPINNED: (None, None),
}


@dataclass
class Sizes:
    """Scenario sizes; the defaults are the full run's."""

    s1_jobs: int = 200_000
    s1_payload: int = 100
    s1_timeout: float = 120.0
    s1_repeats: int = 2
    s2_jobs: int = 2_000
    s2_sleep_ms: float = 50.0
    s2_pools: tuple[int, ...] = (10, 100, 1000)
    s2_timeout: float = 60.0
    s3_jobs: int = 500
    s3_payload: int = 1024 * 1024
    s3_timeout: float = 30.0
    s4_requests: int = 2_000
    s4_concurrency: int = 50
    s4_timeout: float = 60.0
    s5_jobs: int = 10_000
    s5_sleep_ms: float = 5_000.0
    s5_timeout: float = 60.0
    s6_seconds: float = 20.0
    profile_jobs: int = 200_000

    @classmethod
    def smoke(cls) -> Sizes:
        return cls(
            s1_jobs=3_000,
            s1_timeout=30.0,
            s1_repeats=1,
            s2_jobs=200,
            s2_pools=(10, 100),
            s2_timeout=20.0,
            s3_jobs=8,
            s3_timeout=10.0,
            s4_requests=200,
            s4_concurrency=10,
            s4_timeout=20.0,
            s5_jobs=500,
            s5_sleep_ms=1_000.0,
            s5_timeout=20.0,
            s6_seconds=3.0,
            profile_jobs=3_000,
        )


@dataclass
class Context:
    registry: ProcessRegistry
    workdir: Path
    python: str
    c_worker: str
    c_client: str
    sizes: Sizes
    scenarios: set[str]
    pinning: bool
    load: SystemLoad
    _count: int = 0

    def function_name(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}-{self._count}"

    def server(self, args: Sequence[str] | None = None) -> JobServer:
        self._count += 1
        path = self.workdir / f"gearmand-{self._count:03d}"
        path.mkdir(parents=True, exist_ok=True)
        return JobServer(path) if args is None else JobServer(path, args)

    def worker_command(
        self,
        implementation: str,
        servers: Sequence[JobServer],
        function: str,
        *,
        mode: str = "echo",
        sleep_ms: float = 0.0,
        pool: int = 1,
    ) -> list[str]:
        if implementation == C_WORKER:
            if len(servers) != 1:
                raise BenchError("the C worker serves one job server")
            return [
                self.c_worker,
                "--host",
                "127.0.0.1",
                "--port",
                str(servers[0].port),
                "--function",
                function,
                "--mode",
                mode,
                "--sleep-ms",
                str(sleep_ms),
                "--threads",
                str(pool),
            ]
        command = [self.python, str(BENCH_DIR / "workers.py"), implementation]
        for server in servers:
            command += ["--server", server.address]
        command += ["--function", function, "--mode", mode, "--sleep-ms", str(sleep_ms)]
        command += ["--pool", str(pool)]
        return command


def set_driver_cpus(cpus: list[int] | None) -> None:
    """Pin this driver (the loader and the status poller) like gearmand."""
    pin_process(os.getpid(), cpus)


def drain_result(drain: Any) -> dict[str, Any]:
    result = {
        "status": drain.status,
        "jobs": drain.jobs,
        "jobs_done": drain.done,
        "seconds": round(drain.seconds, 4),
        "other_cpu_share": drain.other_cpu_share,
    }
    if drain.detail:
        result["detail"] = drain.detail
    return result


def error_result(exc: BaseException) -> dict[str, Any]:
    return {"status": "error", "detail": f"{type(exc).__name__}: {exc}"}


# S1 echo throughput


def run_echo_drain(
    ctx: Context,
    implementation: str,
    *,
    processes: int,
    placement: str,
    jobs: int,
    payload_size: int,
    timeout: float,
    poll_interval: float,
    on_started: Callable[[list[Child], JobServer], Any] | None = None,
    server_args: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Queue ``jobs`` echo jobs, start the worker(s), and time the drain."""
    worker_cpus, server_cpus = PLACEMENTS[placement]
    function = ctx.function_name("echo")
    payload = bytes(ord("a") + i % 26 for i in range(payload_size))
    with ctx.server(server_args) as server:
        server.pin(server_cpus)
        set_driver_cpus(server_cpus)
        try:
            load_seconds = load_jobs(server.address, function, jobs, payload, timeout)
            ctx.load.wait_for_quiet()
            workers = [
                ctx.registry.start(
                    f"{implementation}-{placement}",
                    ctx.worker_command(implementation, [server], function),
                    cpus=worker_cpus,
                )
                for _ in range(processes)
            ]
            extra = on_started(workers, server) if on_started else None
            drain = wait_for_drain(
                server, function, jobs, workers, timeout=timeout, poll_interval=poll_interval
            )
            result = drain_result(drain)
            result["load_jobs_per_s"] = round(jobs / load_seconds)
            if extra is not None:
                result["extra"] = extra
            return result | {"rate": drain.rate}
        finally:
            set_driver_cpus(None)
            ctx.registry.stop_all()


def scenario_s1(ctx: Context) -> list[dict[str, Any]]:
    sizes = ctx.sizes
    runs: list[tuple[str, int, str]] = []
    placements = [PINNED, UNPINNED] if ctx.pinning else [UNPINNED]
    for placement in placements:
        for implementation in SERIAL_IMPLEMENTATIONS:
            runs.append((implementation, 1, placement))
    runs.append((GEARGEVENT, 2, UNPINNED))
    rows: dict[tuple[str, int, str], dict[str, Any]] = {}
    # Repeats run as whole passes, so a burst of load from elsewhere on the
    # machine hits one run of each implementation rather than all runs of one.
    for repeat in range(sizes.s1_repeats):
        for implementation, processes, placement in runs:
            log.info(
                "S1 echo: %s x%d, %s (pass %d of %d)",
                implementation, processes, placement, repeat + 1, sizes.s1_repeats,
            )
            row = run_s1_once(ctx, implementation, processes, placement)
            log.info("  -> %s", row)
            key = (implementation, processes, placement)
            best = rows.get(key)
            rates = [*(best or {}).get("all_jobs_per_s", []), row.get("jobs_per_s")]
            if best is None or (row.get("status") == "ok" and (
                best.get("status") != "ok" or row["jobs_per_s"] > best["jobs_per_s"]
            )):
                best = row
            best["all_jobs_per_s"] = rates
            rows[key] = best
    return [rows[key] for key in runs]


def scenario_s1_default_buckets(ctx: Context) -> list[dict[str, Any]]:
    """Run S1 once for geargevent and the bare loop under gearmand's default hash tables."""
    placement = PINNED if ctx.pinning else UNPINNED
    results = []
    for implementation in (GEARGEVENT, BARE):
        log.info("S1 echo, default gearmand hash tables: %s, %s", implementation, placement)
        row = run_s1_once(
            ctx, implementation, 1, placement, server_args=GEARMAND_DEFAULT_BUCKETS_ARGS
        )
        row["gearmand_args"] = list(GEARMAND_DEFAULT_BUCKETS_ARGS)
        log.info("  -> %s", row)
        results.append(row)
    return results


def run_s1_once(
    ctx: Context,
    implementation: str,
    processes: int,
    placement: str,
    server_args: Sequence[str] | None = None,
) -> dict[str, Any]:
    sizes = ctx.sizes
    row: dict[str, Any] = {
        "implementation": implementation,
        "processes": processes,
        "placement": placement,
        "payload_bytes": sizes.s1_payload,
    }
    try:
        outcome = run_echo_drain(
            ctx,
            implementation,
            processes=processes,
            placement=placement,
            jobs=sizes.s1_jobs,
            payload_size=sizes.s1_payload,
            timeout=sizes.s1_timeout,
            poll_interval=0.005,
            server_args=server_args,
        )
        outcome["jobs_per_s"] = round(outcome.pop("rate"))
        row |= outcome
    except BenchError as exc:
        row |= error_result(exc)
    return row


# S2 I/O-bound pool


def scenario_s2(ctx: Context, s1: list[dict[str, Any]]) -> list[dict[str, Any]]:
    sizes = ctx.sizes
    serial_rates = {
        row["implementation"]: row.get("jobs_per_s")
        for row in s1
        if row["placement"] == UNPINNED and row["processes"] == 1
    }
    results = []
    for pool in sizes.s2_pools:
        for implementation in POOL_IMPLEMENTATIONS:
            log.info("S2 sleep %g ms: %s, pool %d", sizes.s2_sleep_ms, implementation, pool)
            ideal = pool / (sizes.s2_sleep_ms / 1000.0)
            cap = serial_rates.get(implementation)
            if cap:
                ideal = min(ideal, cap)
            row: dict[str, Any] = {
                "implementation": implementation,
                "pool": pool,
                "sleep_ms": sizes.s2_sleep_ms,
                "method": POOL_METHODS[implementation],
                "ideal_jobs_per_s": round(ideal),
            }
            try:
                drain = run_pool_drain(ctx, implementation, pool)
                row |= drain_result(drain)
                row["jobs_per_s"] = round(drain.rate)
                row["fraction_of_ideal"] = round(drain.rate / ideal, 4)
            except BenchError as exc:
                row |= error_result(exc)
            log.info("  -> %s", row)
            results.append(row)
    return results


def run_pool_drain(ctx: Context, implementation: str, pool: int) -> Any:
    """Start a pool worker, wait until all its connections registered, then queue and drain."""
    sizes = ctx.sizes
    function = ctx.function_name("sleep")
    connections = pool if implementation in (PYGEARMAN, C_WORKER) else 1
    with ctx.server() as server:
        try:
            worker = ctx.registry.start(
                f"{implementation}-pool{pool}",
                ctx.worker_command(
                    implementation, [server], function, mode="sleep",
                    sleep_ms=sizes.s2_sleep_ms, pool=pool,
                ),
            )
            server.wait_for_workers(function, connections, timeout=60)
            ctx.load.wait_for_quiet()
            load_jobs(server.address, function, sizes.s2_jobs, b"x" * 100, sizes.s2_timeout)
            return wait_for_drain(
                server,
                function,
                sizes.s2_jobs,
                [worker],
                timeout=sizes.s2_timeout,
                poll_interval=0.001,
            )
        finally:
            ctx.registry.stop_all()


# S3 large payloads


def scenario_s3(ctx: Context) -> list[dict[str, Any]]:
    sizes = ctx.sizes
    results = []
    for implementation in SERIAL_IMPLEMENTATIONS:
        log.info("S3 payload %d bytes: %s", sizes.s3_payload, implementation)
        row: dict[str, Any] = {
            "implementation": implementation,
            "payload_bytes": sizes.s3_payload,
        }
        try:
            outcome = run_echo_drain(
                ctx,
                implementation,
                processes=1,
                placement=UNPINNED,
                jobs=sizes.s3_jobs,
                payload_size=sizes.s3_payload,
                timeout=sizes.s3_timeout,
                poll_interval=0.005,
            )
            rate = outcome.pop("rate")
            outcome.pop("load_jobs_per_s", None)
            row |= outcome
            row["mb_per_s"] = round(rate * sizes.s3_payload / 1e6, 1)
        except BenchError as exc:
            row |= error_result(exc)
        log.info("  -> %s", row)
        results.append(row)
    return results


# S4 latency


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


def parse_latencies(output: str) -> tuple[list[float], int]:
    latencies = []
    failures = 0
    for line in output.splitlines():
        if line.startswith("FAILED "):
            failures = int(line.split()[1])
        elif line.strip():
            latencies.append(float(line))
    return latencies, failures


def scenario_s4(ctx: Context) -> list[dict[str, Any]]:
    sizes = ctx.sizes
    results = []
    for worker_implementation in SERIAL_IMPLEMENTATIONS:
        function = ctx.function_name("latency")
        with ctx.server() as server:
            try:
                ctx.registry.start(
                    f"{worker_implementation}-latency",
                    ctx.worker_command(worker_implementation, [server], function),
                )
                server.wait_for_workers(function, 1, timeout=30)
                for client in (GEARGEVENT, C_WORKER):
                    for concurrency in (1, sizes.s4_concurrency):
                        log.info(
                            "S4 latency: client %s, worker %s, %d at once",
                            client, worker_implementation, concurrency,
                        )
                        ctx.load.wait_for_quiet()
                        row = run_latency(ctx, server, function, client, concurrency)
                        row = {
                            "client": client,
                            "worker": worker_implementation,
                            "concurrency": concurrency,
                        } | row
                        log.info("  -> %s", row)
                        results.append(row)
            except BenchError as exc:
                results.append({"worker": worker_implementation} | error_result(exc))
            finally:
                ctx.registry.stop_all()
    return results


def run_latency(
    ctx: Context, server: JobServer, function: str, client: str, concurrency: int
) -> dict[str, Any]:
    sizes = ctx.sizes
    arguments = [
        "--function", function,
        "--requests", str(sizes.s4_requests),
        "--concurrency", str(concurrency),
        "--warmup", "20" if concurrency == 1 else "2",
        "--size", str(sizes.s1_payload),
        "--timeout-ms", "10000",
    ]
    if client == C_WORKER:
        command = [ctx.c_client, "--host", "127.0.0.1", "--port", str(server.port), *arguments]
    else:
        command = [
            ctx.python, str(BENCH_DIR / "latency_client.py"), "--server", server.address,
            *arguments,
        ]
    try:
        output, timed_out = ctx.registry.run(f"client-{client}", command, sizes.s4_timeout)
    except BenchError as exc:
        return error_result(exc)
    if timed_out:
        return {"status": "timeout", "detail": f"no result within {sizes.s4_timeout:g} s"}
    latencies, failures = parse_latencies(output)
    if not latencies:
        return {"status": "error", "detail": f"no latencies; {failures} failed requests"}
    return {
        "status": "ok" if failures == 0 else "error",
        "requests": len(latencies),
        "failures": failures,
        "p50_ms": round(percentile(latencies, 0.50) / 1000, 3),
        "p99_ms": round(percentile(latencies, 0.99) / 1000, 3),
        "mean_ms": round(statistics.fmean(latencies) / 1000, 3),
    }


# S5 many jobs in flight


def scenario_s5(ctx: Context) -> dict[str, Any]:
    sizes = ctx.sizes
    jobs = sizes.s5_jobs
    function = ctx.function_name("inflight")
    result: dict[str, Any] = {"jobs": jobs, "sleep_ms": sizes.s5_sleep_ms, "max_jobs": jobs}
    log.info("S5 in flight: %d jobs of %g ms", jobs, sizes.s5_sleep_ms)
    with ctx.server() as server:
        try:
            worker = ctx.registry.start(
                "geargevent-inflight",
                ctx.worker_command(
                    GEARGEVENT, [server], function, mode="sleep",
                    sleep_ms=sizes.s5_sleep_ms, pool=jobs,
                ),
            )
            server.wait_for_workers(function, 1, timeout=30)
            ctx.load.wait_for_quiet()
            time.sleep(1.0)
            idle = rss_bytes(worker.pid)
            load_started = time.monotonic()
            load_jobs(server.address, function, jobs, b"x" * 100, sizes.s5_timeout)
            peak = idle
            last_grab = None
            max_running = 0
            deadline = load_started + sizes.s5_timeout
            while True:
                total, running, _ = server.function_status(function)
                now = time.monotonic()
                peak = max(peak, rss_bytes(worker.pid))
                max_running = max(max_running, running)
                if last_grab is None and total == running:
                    last_grab = now
                if total == 0:
                    break
                if worker.exited():
                    raise BenchError(worker.describe_exit())
                if now > deadline:
                    result["status"] = "timeout"
                    result["detail"] = f"{total} jobs left after {sizes.s5_timeout:g} s"
                    break
                time.sleep(0.02)
            result.setdefault("status", "ok")
            result |= {
                "rss_idle_bytes": idle,
                "rss_peak_bytes": peak,
                "bytes_per_job": round((peak - idle) / jobs),
                "max_running_seen": max_running,
                "seconds_to_last_grab": round((last_grab or now) - load_started, 3),
                "seconds_drain_after_last_grab": round(now - (last_grab or now), 3),
            }
        except BenchError as exc:
            result |= error_result(exc)
        finally:
            ctx.registry.stop_all()
    log.info("  -> %s", result)
    return result


# S6 idle cost


def scenario_s6(ctx: Context) -> dict[str, Any]:
    seconds = ctx.sizes.s6_seconds
    function = ctx.function_name("idle")
    result: dict[str, Any] = {"servers": 2, "seconds_measured": seconds}
    log.info("S6 idle: %g s", seconds)
    with ctx.server() as first, ctx.server() as second:
        try:
            worker = ctx.registry.start(
                "geargevent-idle", ctx.worker_command(GEARGEVENT, [first, second], function)
            )
            first.wait_for_workers(function, 1, timeout=30)
            second.wait_for_workers(function, 1, timeout=30)
            ctx.load.wait_for_quiet()
            time.sleep(2.0)
            stat_before = cpu_seconds_stat(worker.pid)
            threads_before = thread_cpu_ns(worker.pid)
            time.sleep(seconds)
            if worker.exited():
                raise BenchError(worker.describe_exit())
            stat_used = cpu_seconds_stat(worker.pid) - stat_before
            sched_used = cpu_seconds_between(threads_before, thread_cpu_ns(worker.pid))
            result |= {
                "status": "ok",
                "cpu_s_per_min_stat": round(stat_used * 60 / seconds, 4),
                "cpu_s_per_min_schedstat": round(sched_used * 60 / seconds, 5),
                "clock_ticks_per_s": os.sysconf("SC_CLK_TCK"),
                # One clock tick over the measured time, scaled to a minute.
                "stat_resolution_cpu_s_per_min": round(
                    60 / (os.sysconf("SC_CLK_TCK") * seconds), 4
                ),
            }
        except BenchError as exc:
            result |= error_result(exc)
        finally:
            ctx.registry.stop_all()
    log.info("  -> %s", result)
    return result


# Profile of geargevent's echo path


def scenario_profile(ctx: Context) -> dict[str, Any]:
    """Sample geargevent's worker with py-spy during an echo drain (pinned if possible)."""
    py_spy = str(Path(ctx.python).parent / "py-spy")
    output = ctx.workdir / "py-spy-raw.txt"
    sampler: dict[str, subprocess.Popen[bytes]] = {}

    def attach(workers: list[Child], server: JobServer) -> None:
        # Sample only the drain: wait for the first job, so imports and
        # connecting stay out of the profile.
        deadline = time.monotonic() + 30
        while workers[0].first_job is None and time.monotonic() < deadline:
            if workers[0].exited():
                raise BenchError(workers[0].describe_exit())
            time.sleep(0.002)
        sampler["process"] = subprocess.Popen(
            [
                py_spy, "record", "--pid", str(workers[0].pid), "--format", "raw",
                "--output", str(output), "--rate", "250", "--nonblocking",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=(ctx.workdir / "py-spy.log").open("wb"),
            start_new_session=True,
        )
        pin_process(sampler["process"].pid, PLACEMENTS[PINNED][1])

    log.info("profile: geargevent echo drain under py-spy")
    placement = PINNED if ctx.pinning else UNPINNED
    try:
        outcome = run_echo_drain(
            ctx,
            GEARGEVENT,
            processes=1,
            placement=placement,
            jobs=ctx.sizes.profile_jobs,
            payload_size=ctx.sizes.s1_payload,
            timeout=ctx.sizes.s1_timeout,
            poll_interval=0.005,
            on_started=attach,
        )
    except BenchError as exc:
        return error_result(exc)
    finally:
        process = sampler.get("process")
        if process is not None:
            # py-spy writes its output when the target exits or on SIGINT.
            if process.poll() is None:
                os.kill(process.pid, signal.SIGINT)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(5)
    if not output.exists():
        return {"status": "error", "detail": "py-spy wrote no output; see py-spy.log"}
    summary = summarize_profile(output.read_text())
    summary["status"] = "ok"
    summary["spawn_cost"] = measure_spawn_cost(ctx)
    summary["tool"] = "py-spy record --rate 250 --nonblocking"
    summary["placement"] = placement
    summary["jobs_per_s_while_sampled"] = round(outcome["rate"])
    return summary


def measure_spawn_cost(ctx: Context) -> dict[str, Any]:
    """Run spawn_cost.py: a new greenlet per job against reused greenlets."""
    jobs = min(100_000, max(3_200, ctx.sizes.profile_jobs // 2))
    ctx.load.wait_for_quiet()
    try:
        output, timed_out = ctx.registry.run(
            "spawn-cost",
            [ctx.python, str(BENCH_DIR / "spawn_cost.py"), "--jobs", str(jobs)],
            timeout=60,
        )
    except BenchError as exc:
        return error_result(exc)
    if timed_out:
        return {"status": "timeout"}
    return {"status": "ok"} | json.loads(output)


def summarize_profile(raw: str, top: int = 15) -> dict[str, Any]:
    """Sum py-spy's collapsed stacks into self and total sample shares per function."""
    self_counts: collections.Counter[str] = collections.Counter()
    total_counts: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        samples += count
        frames = [function_label(frame) for frame in stack.split(";")]
        self_counts[frames[-1]] += count
        for frame in set(frames):
            total_counts[frame] += count
    if not samples:
        return {"samples": 0, "self": [], "total": []}

    def share(counter: collections.Counter[str]) -> list[list[Any]]:
        return [[name, round(100 * n / samples, 1)] for name, n in counter.most_common(top)]

    return {"samples": samples, "self": share(self_counts), "total": share(total_counts)}


def function_label(frame: str) -> str:
    """Turn ``func (/path/to/package/module.py:123)`` into ``func (package/module.py)``."""
    name, _, location = frame.partition(" (")
    path = location.rstrip(")").rsplit(":", 1)[0]
    parts = Path(path).parts
    short = "/".join(parts[-2:]) if len(parts) >= 2 else path
    return f"{name} ({short})" if path else name


__all__ = [
    "Context",
    "Sizes",
    "scenario_profile",
    "scenario_s1",
    "scenario_s1_default_buckets",
    "scenario_s2",
    "scenario_s3",
    "scenario_s4",
    "scenario_s5",
    "scenario_s6",
]
