"""Targets and the Markdown report, computed from the JSON results alone."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from scenarios import BARE, C_WORKER, GEAR, GEARGEVENT, PINNED, PYGEARMAN, UNPINNED


def find(rows: Iterable[dict[str, Any]], **match: Any) -> dict[str, Any] | None:
    for row in rows:
        if all(row.get(key) == value for key, value in match.items()):
            return row
    return None


def ok_value(row: dict[str, Any] | None, key: str) -> float | None:
    """Return the measured value of a run that finished, else None (timeout or error)."""
    if row is None or row.get("status") != "ok":
        return None
    value = row.get(key)
    return float(value) if value is not None else None


def main_placement(results: dict[str, Any]) -> str:
    s1 = results.get("s1") or []
    return PINNED if any(row["placement"] == PINNED for row in s1) else UNPINNED


def target(
    scenario: str,
    text: str,
    measured: float | None,
    threshold: float,
    unit: str,
    *,
    higher_is_better: bool = True,
    note: str = "",
    resolution: float = 1e-12,
) -> dict[str, Any]:
    """Build one target with its verdict. A ``margin`` above 1 means met with room to spare."""
    if measured is None:
        return {
            "scenario": scenario,
            "target": text,
            "measured": None,
            "threshold": threshold,
            "unit": unit,
            "met": None,
            "margin": None,
            "note": note or "not measured (the run failed, timed out or was skipped)",
        }
    if not higher_is_better and measured < resolution and resolution >= threshold:
        return {
            "scenario": scenario,
            "target": text,
            "measured": round(measured, 4),
            "threshold": threshold,
            "unit": unit,
            "met": None,
            "margin": None,
            "note": f"{note}; the resolution is too coarse for this threshold",
        }
    # A lower-is-better value below the measurement resolution counts as the
    # resolution, so the margin stays finite and is not overstated.
    margin = measured / threshold if higher_is_better else threshold / max(measured, resolution)
    return {
        "scenario": scenario,
        "target": text,
        "measured": round(measured, 4),
        "threshold": threshold,
        "unit": unit,
        "met": margin >= 1.0,
        "margin": round(margin, 3),
        "note": note,
    }


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def evaluate_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    targets = []
    placement = main_placement(results)
    s1 = results.get("s1") or []
    if s1:

        def rate(implementation: str, processes: int = 1, where: str = placement) -> float | None:
            row = find(s1, implementation=implementation, processes=processes, placement=where)
            return ok_value(row, "jobs_per_s")

        ours = rate(GEARGEVENT)
        where = f"{placement} placement"
        targets.append(target(
            "S1", "geargevent, one process, at least 2x the serial C worker",
            ratio(ours, rate(C_WORKER)), 2.0, "x", note=where,
        ))
        targets.append(target(
            "S1", "geargevent, one process, at least 5x pygearman",
            ratio(ours, rate(PYGEARMAN)), 5.0, "x", note=where,
        ))
        targets.append(target(
            "S1", "geargevent, two processes at least 1.3x one process",
            ratio(rate(GEARGEVENT, 2, UNPINNED), rate(GEARGEVENT, 1, UNPINNED)), 1.3, "x",
            note="both unpinned: two workers and gearmand share the 2 cores",
        ))
        targets.append(target(
            "S1", "geargevent at least 60 % of the bare loop (aim)",
            ratio(ours, rate(BARE)), 0.60, "fraction", note=where,
        ))
    s2 = results.get("s2") or []
    for pool, threshold in ((100, 0.95), (1000, 0.80)):
        if any(row.get("pool") == pool for row in s2):
            row = find(s2, implementation=GEARGEVENT, pool=pool)
            targets.append(target(
                "S2", f"geargevent at least {threshold:.0%} of ideal at pool {pool}",
                ok_value(row, "fraction_of_ideal"), threshold, "fraction",
            ))
    s3 = results.get("s3") or []
    if s3:
        targets.append(target(
            "S3", "geargevent MB/s at least 1.3x pygearman",
            ratio(
                ok_value(find(s3, implementation=GEARGEVENT), "mb_per_s"),
                ok_value(find(s3, implementation=PYGEARMAN), "mb_per_s"),
            ),
            1.3, "x",
        ))
    s4 = results.get("s4") or []
    if s4:
        ours = find(s4, client=GEARGEVENT, worker=GEARGEVENT, concurrency=1)
        theirs = find(s4, client=C_WORKER, worker=C_WORKER, concurrency=1)
        targets.append(target(
            "S4", "p50 of our client + our worker within 1.5x of C client + C worker",
            ratio(ok_value(ours, "p50_ms"), ok_value(theirs, "p50_ms")), 1.5, "x",
            higher_is_better=False, note="one request at a time",
        ))
        targets.append(target(
            "S4", "p99 of our client + our worker under 5 ms, one at a time",
            ok_value(ours, "p99_ms"), 5.0, "ms", higher_is_better=False,
        ))
    s5 = results.get("s5")
    if s5:
        per_job = ok_value(s5, "bytes_per_job")
        targets.append(target(
            "S5", "resident memory per in-flight job under 30 KB",
            per_job / 1000 if per_job is not None else None, 30.0, "KB",
            higher_is_better=False,
        ))
        targets.append(target(
            "S5", "drained within 7 s of the last grab",
            ok_value(s5, "seconds_drain_after_last_grab"), 7.0, "s", higher_is_better=False,
            note=f"each job waits {s5.get('sleep_ms', 0) / 1000:g} s",
        ))
    s6 = results.get("s6")
    if s6:
        targets.append(target(
            "S6", "idle worker on 2 servers under 0.1 CPU s per minute",
            ok_value(s6, "cpu_s_per_min_stat"), 0.1, "CPU s/min", higher_is_better=False,
            resolution=s6.get("stat_resolution_cpu_s_per_min", 1e-12),
            note=f"/proc/PID/stat, resolution {s6.get('stat_resolution_cpu_s_per_min', 0):g} "
            "CPU s/min",
        ))
    return targets


# Markdown


def label(results: dict[str, Any], implementation: str) -> str:
    return str(results["meta"]["implementations"].get(implementation, implementation))


def fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) or digits:
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def cell(row: dict[str, Any] | None, key: str, digits: int = 0) -> str:
    """Format a table cell: the value, or why there is none, with partial rates marked."""
    if row is None:
        return "not run"
    status = row.get("status")
    if status == "error":
        return "error"
    value = row.get(key)
    if status == "timeout":
        return f"timeout ({fmt(value, digits)} over {row.get('jobs_done', 0):,} jobs)"
    return fmt(value, digits)


def verdict(item: dict[str, Any]) -> str:
    if item["met"] is None:
        return "not measured"
    return "met" if item["met"] else "**missed**"


def render_markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    lines: list[str] = []
    add = lines.append
    add("# Benchmarks")
    add("")
    add(
        "Throughput and latency of geargevent against pygearman, gear, a C worker on "
        "libgearman and a bare Python loop, all measured in one run on one machine. "
        "Numbers from another machine are not comparable; rerun `make bench` there."
    )
    add("")
    add(f"- Date: {meta['date']}")
    add(f"- Command: `{meta['command']}` (driver: `{meta['argv']}`)")
    add(f"- Total runtime: {meta['runtime_s']:.0f} s")
    add(f"- Machine: {meta['machine']['cpu_model']}, `nproc` = {meta['machine']['nproc']}, "
        f"{meta['machine']['memory']}, Linux {meta['machine']['kernel']}")
    add(f"- Job server: gearmand {meta['gearmand']['version']}, started as "
        f"`{meta['gearmand']['command']}`, a fresh one for every run")
    add(f"- Python {meta['python']}, gevent {meta['gevent']}; {meta['gcc']}")
    add("- Implementations: " + "; ".join(
        f"{key} = {value}" for key, value in meta["implementations"].items()))
    add(
        "- Machine-readable results: `docs/benchmarks.json` (the same file as "
        "`bench/results/latest.json`)."
    )
    add("")
    add("## Targets")
    add("")
    add("| scenario | target | measured | threshold | verdict | ratio to threshold | note |")
    add("| --- | --- | --- | --- | --- | --- | --- |")
    for item in results.get("targets", []):
        measured = item["measured"]
        shown = "–" if measured is None else f"{measured:g} {item['unit']}"
        margin = "–" if item["margin"] is None else f"{item['margin']:.2f}"
        add(f"| {item['scenario']} | {item['target']} | {shown} | "
            f"{item['threshold']:g} {item['unit']} | {verdict(item)} | {margin} | "
            f"{item['note']} |")
    add("")
    add("The ratio to threshold is measured ÷ threshold where higher is better and "
        "threshold ÷ measured where lower is better, so 1.00 or more means met.")
    add("")
    render_s1(results, add)
    render_s2(results, add)
    render_s3(results, add)
    render_s4(results, add)
    render_s5(results, add)
    render_s6(results, add)
    render_profile(results, add)
    render_method(results, add)
    return "\n".join(lines) + "\n"


def render_s1(results: dict[str, Any], add: Any) -> None:
    s1 = results.get("s1")
    if not s1:
        return
    sizes = results["meta"]["sizes"]
    add("## S1: echo throughput")
    add("")
    add(f"{sizes['s1_jobs']:,} background jobs of {sizes['s1_payload']} bytes are queued "
        "first by a pipelined raw-socket loader; then the worker starts, and the drain is "
        "timed from its first job to the moment gearmand reports the queue empty. The "
        "handler returns the payload reversed. **Pinned**: the worker alone on CPU 1, "
        "gearmand, the loader and the driver on CPU 0 (taskset). **Unpinned**: no "
        "affinity set.")
    add("")
    add("| implementation | processes | pinned jobs/s | unpinned jobs/s | "
        "geargevent ÷ this (pinned) | every pass, pinned; unpinned | other load |")
    add("| --- | --- | --- | --- | --- | --- | --- |")
    placement = main_placement(results)
    ours = ok_value(find(s1, implementation=GEARGEVENT, processes=1, placement=placement),
                    "jobs_per_s")
    implementations = [GEARGEVENT, PYGEARMAN, GEAR, C_WORKER, BARE]
    for implementation in implementations:
        pinned = find(s1, implementation=implementation, processes=1, placement=PINNED)
        unpinned = find(s1, implementation=implementation, processes=1, placement=UNPINNED)
        theirs = ok_value(pinned if placement == PINNED else unpinned, "jobs_per_s")
        relative = ratio(ours, theirs)
        add(f"| {label(results, implementation)} | 1 | {cell(pinned, 'jobs_per_s')} | "
            f"{cell(unpinned, 'jobs_per_s')} | "
            f"{'–' if relative is None else f'{relative:.2f}'} | "
            f"{passes(pinned)}; {passes(unpinned)} | {other_load(pinned, unpinned)} |")
    two = find(s1, implementation=GEARGEVENT, processes=2, placement=UNPINNED)
    add(f"| {label(results, GEARGEVENT)} | 2 | – | {cell(two, 'jobs_per_s')} | – | "
        f"–; {passes(two)} | {other_load(two)} |")
    add("")
    add("Each figure is the best of the passes listed. *Other load* is the largest "
        "share of both CPUs that processes outside the benchmark used during these "
        "drains (from /proc/stat); above a few percent, that run was slowed down by "
        "something else on the machine.")
    add("")
    default_buckets = results.get("s1_default_buckets") or []
    if default_buckets:
        flags = " ".join(default_buckets[0].get("gearmand_args", []))
        add("gearmand 1.1.20 keeps jobs in hash tables of 991 buckets unless told "
            "otherwise, and with this many jobs queued the long chains make gearmand itself "
            "the limit for fast workers. The runs above therefore give gearmand "
            "`--hashtable-buckets=262139`. The same drain under the default "
            f"(`{flags}`, {default_buckets[0]['placement']}, one pass):")
        add("")
        add("| implementation | jobs/s, default hash tables | jobs/s, 262,139 buckets |")
        add("| --- | --- | --- |")
        for row in default_buckets:
            tuned = find(s1, implementation=row["implementation"], processes=1,
                         placement=row["placement"])
            add(f"| {label(results, row['implementation'])} | {cell(row, 'jobs_per_s')} | "
                f"{cell(tuned, 'jobs_per_s')} |")
        add("")
    load_rates = [row["load_jobs_per_s"] for row in s1 if row.get("load_jobs_per_s")]
    if load_rates:
        add(f"The raw loader queued {min(load_rates):,} to {max(load_rates):,} jobs/s "
            "(not part of any timing).")
        add("")
    add("NOTE: passes of the same drain differ (see *every pass*), more so when other "
        "programs share the machine. Treat differences smaller than that spread as noise.")
    add("")


def passes(row: dict[str, Any] | None) -> str:
    if row is None:
        return "–"
    return ", ".join(fmt(rate) for rate in row.get("all_jobs_per_s", []))


def other_load(*rows: dict[str, Any] | None) -> str:
    shares = [row["other_cpu_share"] for row in rows if row and row.get("other_cpu_share")
              is not None]
    return f"{100 * max(shares):.0f} %" if shares else "–"


def render_s2(results: dict[str, Any], add: Any) -> None:
    s2 = results.get("s2")
    if not s2:
        return
    sizes = results["meta"]["sizes"]
    add("## S2: I/O-bound jobs")
    add("")
    add(f"{sizes['s2_jobs']:,} jobs whose handler waits {sizes['s2_sleep_ms']:g} ms. The "
        "worker starts first and the jobs are queued once all its connections have "
        "registered; the drain is timed from the first job to the empty queue. The ideal "
        "is pool ÷ wait, capped by the same implementation's unpinned S1 rate. No pinning.")
    add("")
    add("| implementation | how it runs a pool | " + " | ".join(
        f"pool {pool}: jobs/s (% of ideal)" for pool in sizes["s2_pools"]) + " |")
    add("| --- | --- | " + " | ".join("---" for _ in sizes["s2_pools"]) + " |")
    for implementation in (GEARGEVENT, PYGEARMAN, GEAR, C_WORKER):
        cells = []
        method = ""
        for pool in sizes["s2_pools"]:
            row = find(s2, implementation=implementation, pool=pool)
            if row is None:
                cells.append("not run")
                continue
            method = row.get("method", method)
            value = cell(row, "jobs_per_s")
            fraction = row.get("fraction_of_ideal")
            if fraction is not None:
                value += f" ({fraction:.0%} of {row['ideal_jobs_per_s']:,})"
            cells.append(value)
        add(f"| {label(results, implementation)} | {method} | " + " | ".join(cells) + " |")
    add("")


def render_s3(results: dict[str, Any], add: Any) -> None:
    s3 = results.get("s3")
    if not s3:
        return
    sizes = results["meta"]["sizes"]
    add("## S3: large payloads")
    add("")
    add(f"{sizes['s3_jobs']:,} echo jobs of {sizes['s3_payload']:,} bytes, queued by the "
        f"raw loader, drained with a limit of {sizes['s3_timeout']:g} s. MB/s is 10^6 "
        "bytes of job payload per second (each job's result is as large again). No pinning.")
    add("")
    add("| implementation | MB/s | seconds | jobs done |")
    add("| --- | --- | --- | --- |")
    for implementation in (GEARGEVENT, PYGEARMAN, GEAR, C_WORKER, BARE):
        row = find(s3, implementation=implementation)
        add(f"| {label(results, implementation)} | {cell(row, 'mb_per_s', 1)} | "
            f"{fmt((row or {}).get('seconds'), 2)} | {fmt((row or {}).get('jobs_done'))} |")
    add("")


def render_s4(results: dict[str, Any], add: Any) -> None:
    s4 = results.get("s4")
    if not s4:
        return
    sizes = results["meta"]["sizes"]
    add("## S4: foreground round-trip latency")
    add("")
    add(f"{sizes['s4_requests']:,} foreground jobs of {sizes['s1_payload']} bytes, timed "
        f"from submit to result, one at a time and with {sizes['s4_concurrency']} "
        "submitters at once (warm-up jobs untimed). Our client runs the submitters as "
        "greenlets on one GearmanClient; the C client runs them as threads with one "
        "gearman_client_st each. p50 / p99 in ms. No pinning.")
    add("")
    concurrencies = (1, sizes["s4_concurrency"])
    header = ["worker"]
    for client in (GEARGEVENT, C_WORKER):
        for concurrency in concurrencies:
            header.append(f"{label(results, client).split(' ')[0]} client, {concurrency} "
                          "at once")
    add("| " + " | ".join(header) + " |")
    add("| " + " | ".join("---" for _ in header) + " |")
    for worker in (GEARGEVENT, PYGEARMAN, GEAR, C_WORKER, BARE):
        cells = [label(results, worker)]
        for client in (GEARGEVENT, C_WORKER):
            for concurrency in concurrencies:
                row = find(s4, client=client, worker=worker, concurrency=concurrency)
                if row is None or row.get("status") != "ok":
                    cells.append((row or {}).get("status", "not run"))
                else:
                    cells.append(f"{row['p50_ms']:.3f} / {row['p99_ms']:.3f}")
        add("| " + " | ".join(cells) + " |")
    add("")


def render_s5(results: dict[str, Any], add: Any) -> None:
    s5 = results.get("s5")
    if not s5:
        return
    add("## S5: many jobs in flight")
    add("")
    add(f"One geargevent process with max_jobs={s5['max_jobs']:,}; {s5['jobs']:,} jobs that "
        f"each wait {s5['sleep_ms'] / 1000:g} s are queued at once. Memory is VmRSS from "
        "/proc at its peak minus VmRSS while idle and connected; the last grab is the "
        "first status poll (every 20 ms) that found no job queued.")
    add("")
    if s5.get("status") != "ok":
        add(f"Result: {s5.get('status')}: {s5.get('detail', '')}")
        add("")
        return
    add("| measure | value |")
    add("| --- | --- |")
    add(f"| RSS idle | {s5['rss_idle_bytes'] / 1e6:.1f} MB |")
    add(f"| RSS peak | {s5['rss_peak_bytes'] / 1e6:.1f} MB |")
    add(f"| per in-flight job | {s5['bytes_per_job'] / 1000:.1f} KB |")
    add(f"| most jobs running at once (gearmand status) | {s5['max_running_seen']:,} |")
    add(f"| queue to last grab | {s5['seconds_to_last_grab']:.2f} s |")
    add(f"| last grab to empty queue | {s5['seconds_drain_after_last_grab']:.2f} s |")
    add("")


def render_s6(results: dict[str, Any], add: Any) -> None:
    s6 = results.get("s6")
    if not s6:
        return
    add("## S6: idle cost")
    add("")
    add(f"An idle geargevent worker (default settings) connected to 2 gearmand servers, "
        f"measured over {s6['seconds_measured']:g} s after a 2 s settling time and scaled "
        "to one minute.")
    add("")
    if s6.get("status") != "ok":
        add(f"Result: {s6.get('status')}: {s6.get('detail', '')}")
        add("")
        return
    stat_value = s6["cpu_s_per_min_stat"]
    if stat_value == 0:
        stat_text = (f"less than one clock tick in {s6['seconds_measured']:g} s, so under "
                     f"{s6['stat_resolution_cpu_s_per_min']:g} CPU s per minute")
    else:
        stat_text = f"{stat_value:g} CPU s per minute"
    add(f"- From /proc/PID/stat (utime + stime, {s6['clock_ticks_per_s']} ticks per s): "
        f"{stat_text}.")
    add(f"- From /proc/PID/task/*/schedstat (nanoseconds): "
        f"{s6['cpu_s_per_min_schedstat']:g} CPU s per minute.")
    add("")


def render_profile(results: dict[str, Any], add: Any) -> None:
    profile = results.get("profile")
    if not profile:
        return
    add("## Where geargevent's time goes in S1")
    add("")
    if profile.get("status") != "ok":
        add(f"The profile failed: {profile.get('detail', '')}")
        add("")
        return
    add(f"Sampled with `{profile['tool']}` during a separate {profile['placement']} echo "
        f"drain ({profile['samples']:,} samples, {profile['jobs_per_s_while_sampled']:,} "
        "jobs/s while sampled). py-spy drops samples in which the process waits in a "
        "system call, so the shares are of busy time. *Self* is the share of samples "
        "with the function on top of the stack; *total* counts it anywhere on the stack.")
    add("")
    add("| self % | function |")
    add("| --- | --- |")
    for name, share in profile["self"]:
        add(f"| {share} | `{name}` |")
    add("")
    add("| total % | function |")
    add("| --- | --- |")
    for name, share in profile["total"]:
        add(f"| {share} | `{name}` |")
    add("")
    cost = profile.get("spawn_cost") or {}
    if cost.get("status") == "ok":
        per_job = cost["us_per_job"]
        add(f"`bench/spawn_cost.py` runs a trivial handler for {cost['jobs']:,} jobs, 32 per "
            "event-loop iteration, on this machine:")
        add("")
        add("| how each job runs | µs per job |")
        add("| --- | --- |")
        add(f"| `gevent.spawn` per job (what the worker did at first) | {per_job['spawn']} |")
        add(f"| new raw `greenlet.greenlet` per job | {per_job['raw_greenlet']} |")
        add(f"| reused greenlets from a free list (what the worker does now) | "
            f"{per_job['reused_greenlet']} |")
        add("")
    add(WHAT_CHANGED)
    add("")
    notes = results["meta"].get("profile_notes")
    if notes:
        add(notes)
        add("")


# The changes the profile led to. Measured by hand on the machine of the first full run,
# with the same gearmand (--threads=1 --hashtable-buckets=262139) and the worker
# pinned to its own core, draining 200,000 echo jobs with the old and the new code
# one after the other.
WHAT_CHANGED = """\
What the first profile showed, and what changed:

- **A greenlet per job.** The first profile had `gevent.spawn` in `_job_assigned` as the \
largest cost, about half of a trivial job's time. Jobs now run in raw greenlets that park \
in the hub after a job and are resumed by a hub callback for the next one. Side by side on \
the same gearmand, one process went from about 61,000 to about 135,000 jobs/s.
- **A writer greenlet per batch.** Waking a writer greenlet for every batch cost a switch \
per loop iteration. Queued packets are now written by a hub callback at the end of the \
loop iteration, with a greenlet only when the kernel does not take everything at once. \
Echo throughput and the serial round trip both improved slightly (within a few percent).
- **Results behind GRABs.** A job assignment asks for more jobs at once, so those GRABs \
were queued ahead of the job's result and gearmand answered them before forwarding the \
result. Results and in-flight updates now leave first.

What limits it now: the bare loop does no per-job bookkeeping at all (no job object, no \
greenlet switch, no encoder call, no slot accounting), so about 8 µs of Python per job \
against its 3 µs remains. With gearmand's default hash tables both reach about the same \
rate, because gearmand is then the limit.

The serial round trip (S4) pays for the NOOP, GRAB and JOB_ASSIGN hops in Python on the \
worker, and for the submit and the result in Python on the client. Each side adds roughly \
0.05 to 0.1 ms over the C programs (an estimate from the table above). Across runs on \
this machine the p50 ratio to C client + C worker ranged from 1.36x to 2.24x, so the \
1.5x target is met in some runs and missed in others."""


def render_method(results: dict[str, Any], add: Any) -> None:
    add("## How it is measured")
    add("")
    add("- `bench/run.py` owns every process: a fresh gearmand (`geargevent.testing."
        "GearmandProcess`, 127.0.0.1, free port) per run, the workers and clients, each "
        "stopped by PID after its run and on Ctrl-C. Each run has a time limit and is "
        "reported as `timeout`, with the rate over the jobs it finished, when it runs out.")
    add("- Drains end at the first `status` poll (every 5 ms, 1 ms in S2) that finds the "
        "function empty, so gearmand has received every WORK_COMPLETE. They start at the "
        "worker's first job, which each worker reports on its standard output with "
        "CLOCK_MONOTONIC.")
    add("- gear gets TCP_NODELAY on its sockets (a subclass of `gear.Connection` in "
        "`bench/workers.py`). Without it, gear's small packets can wait for the peer's "
        "delayed ACK (40 ms minimum on Linux) on every job. pygearman sets TCP_NODELAY "
        "itself.")
    add("- The C worker (`bench/c/worker.c`) is serial, one connection and one job at a "
        "time, like any libgearman worker. In S2 it runs a pool of threads with one "
        "`gearman_worker_st` each. The bare loop (`run_bare` in `bench/workers.py`) is "
        "plain Python on a blocking socket with 32 GRAB_JOB_UNIQ outstanding.")
    add("- `make bench-smoke` runs the same code with tiny sizes and writes to a temporary "
        "folder; its numbers mean nothing.")
    add("")
