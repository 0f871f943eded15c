"""Run the geargevent benchmark suite: every scenario, every implementation, one run.

Usage (from the repository root)::

    make bench         # full sizes; writes docs/benchmarks.md, docs/benchmarks.json
                       # and bench/results/latest.json
    make bench-smoke   # tiny sizes, output in a temporary folder

On first use the driver creates its own virtual environment ``bench/.env`` from
the Python that started it and installs ``bench/requirements.txt`` and this
repository (editable) into it. It then runs itself again inside that
environment and compiles the C worker and client in ``bench/c`` with gcc into
``bench/build``.
See ``docs/benchmarks.md`` for what each scenario measures.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import hashlib
import json
import logging
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
ENV_DIR = BENCH_DIR / ".env"
ENV_PYTHON = ENV_DIR / "bin" / "python"
BUILD_DIR = BENCH_DIR / "build"
REQUIREMENTS = BENCH_DIR / "requirements.txt"
SCENARIOS = ("s1", "s2", "s3", "s4", "s5", "s6", "profile")

log = logging.getLogger("bench")


# Environment and build


def ensure_bench_env() -> None:
    """Create or update bench/.env, then re-run this script with its Python."""
    if ENV_DIR.resolve() == Path(sys.prefix).resolve():
        return
    stamp = ENV_DIR / ".bench-installed"
    wanted = hashlib.sha256(
        REQUIREMENTS.read_bytes() + (REPO_DIR / "pyproject.toml").read_bytes()
    ).hexdigest()
    if not ENV_PYTHON.exists():
        print(f"creating {ENV_DIR} with {sys.executable}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(ENV_DIR)], check=True)
    if not stamp.exists() or stamp.read_text().strip() != wanted:
        print(f"installing the benchmark requirements into {ENV_DIR}", file=sys.stderr)
        subprocess.run(
            [str(ENV_PYTHON), "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS),
             "-e", str(REPO_DIR)],
            check=True,
        )
        stamp.write_text(wanted + "\n")
    os.execv(str(ENV_PYTHON), [str(ENV_PYTHON), str(Path(__file__).resolve()), *sys.argv[1:]])


def build_c_programs() -> tuple[str, str]:
    """Compile bench/c/worker.c and client.c against libgearman unless up to date."""
    compiler = shutil.which("gcc")
    if compiler is None:
        raise SystemExit("gcc not found; install Debian packages gcc and libgearman-dev")
    BUILD_DIR.mkdir(exist_ok=True)
    programs = []
    for name in ("worker", "client"):
        source = BENCH_DIR / "c" / f"{name}.c"
        binary = BUILD_DIR / f"bench-{name}"
        if not binary.exists() or binary.stat().st_mtime < source.stat().st_mtime:
            command = [compiler, "-O2", "-Wall", "-Wextra", "-o", str(binary), str(source),
                       "-lgearman", "-lpthread"]
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode != 0:
                raise SystemExit(
                    f"compiling {source} failed (is libgearman-dev installed?):\n"
                    f"{result.stderr}"
                )
        programs.append(str(binary))
    return programs[0], programs[1]


# Description of the machine and the software


def command_output(command: list[str]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def describe_machine() -> dict[str, Any]:
    models = []
    mhz = cache = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "model name":
            models.append(value)
        elif key == "cpu MHz" and not mhz:
            mhz = value
        elif key == "cache size" and not cache:
            cache = value
    memory = ""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB memory"
    model = models[0] if models else "unknown CPU"
    return {
        "cpu_model": f"{len(models)} x {model} at {mhz} MHz, cache {cache}",
        "nproc": command_output(["nproc"]),
        "memory": memory,
        "kernel": platform.release(),
    }


def describe_software(python: str) -> dict[str, Any]:
    import gevent
    from harness import GEARMAND_ARGS, GEARMAND_THREADS

    import geargevent
    from geargevent.testing import GearmandProcess

    probe = GearmandProcess(threads=GEARMAND_THREADS, args=GEARMAND_ARGS, port=4730)
    # The real port and folder differ per run, so the report shows placeholders.
    gearmand_command = " ".join(probe.command())
    gearmand_command = gearmand_command.replace(" 4730 ", " PORT ")
    gearmand_command = gearmand_command.replace(str(probe.workdir), "WORKDIR")
    shutil.rmtree(probe.workdir, ignore_errors=True)
    versions = {}
    for package in ("pygearman", "gear", "py-spy"):
        versions[package] = command_output([python, "-m", "pip", "show", package]).partition(
            "Version: ")[2].split("\n")[0] or "unknown"
    libgearman = command_output(["dpkg-query", "-W", "-f=${Version}", "libgearman-dev"])
    return {
        "python": platform.python_version(),
        "gevent": gevent.__version__,
        "gcc": command_output(["gcc", "--version"]).splitlines()[0],
        "gearmand": {"version": probe.version, "command": gearmand_command},
        "implementations": {
            "geargevent": f"geargevent {geargevent.__version__}",
            "pygearman": f"pygearman {versions['pygearman']}",
            "gear": f"gear {versions['gear']} with TCP_NODELAY",
            "libgearman": f"C worker on libgearman {libgearman}",
            "bare": "bare loop (plain Python sockets)",
        },
        "py_spy": versions["py-spy"],
    }


# Options


def add_size_options(parser: argparse.ArgumentParser, sizes_type: Any) -> None:
    group = parser.add_argument_group("sizes (defaults: the full run; --smoke shrinks them)")
    for field in dataclasses.fields(sizes_type):
        option = "--" + field.name.replace("_", "-")
        if field.type in ("tuple[int, ...]",):
            group.add_argument(option, type=lambda text: tuple(int(v) for v in text.split(",")),
                               help="comma-separated list")
        elif field.type == "float":
            group.add_argument(option, type=float, help="seconds" if "timeout" in field.name
                               or "seconds" in field.name else "milliseconds")
        else:
            group.add_argument(option, type=int)


def parse_options(sizes_type: Any) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark geargevent against pygearman, gear, libgearman and a bare loop."
    )
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes, output in a temporary folder (for CI)")
    parser.add_argument("--only", default=",".join(SCENARIOS),
                        help=f"comma-separated scenarios to run, from {','.join(SCENARIOS)}")
    parser.add_argument("--output-dir", type=Path,
                        help="folder for benchmarks.md and latest.json; the default is docs/ "
                        "and bench/results/ for a full run of every scenario, else a new "
                        "temporary folder")
    parser.add_argument("--no-pin", action="store_true",
                        help="skip the pinned placement (it needs 2 CPUs and taskset)")
    parser.add_argument("--command-label", default="",
                        help="the command to show in the report (the Makefile passes its own)")
    parser.add_argument("--quiet-budget", type=float,
                        help="seconds in all that runs may wait for other processes on the "
                        "machine to go idle before they start (default 120, 0 with --smoke)")
    parser.add_argument("--render-only", type=Path, metavar="JSON",
                        help="run nothing: rewrite benchmarks.md from this results file "
                        "into --output-dir (default docs/)")
    parser.add_argument("--verbose", action="store_true", help="log every process started")
    add_size_options(parser, sizes_type)
    return parser.parse_args()


# Main


def main() -> int:
    ensure_bench_env()
    sys.path.insert(0, str(BENCH_DIR))
    from harness import ProcessRegistry, SystemLoad
    from report import evaluate_targets, render_markdown
    from scenarios import (
        Context,
        Sizes,
        scenario_profile,
        scenario_s1,
        scenario_s1_default_buckets,
        scenario_s2,
        scenario_s3,
        scenario_s4,
        scenario_s5,
        scenario_s6,
    )

    options = parse_options(Sizes)
    logging.basicConfig(
        level=logging.DEBUG if options.verbose else logging.INFO,
        format="%(asctime)s %(message)s",
        datefmt="%H:%M:%S",
    )
    if options.render_only is not None:
        results = json.loads(options.render_only.read_text())
        results["targets"] = evaluate_targets(results)
        directory = options.output_dir or REPO_DIR / "docs"
        (directory / "benchmarks.md").write_text(render_markdown(results))
        log.info("wrote %s", directory / "benchmarks.md")
        return 0
    selected = {name.strip() for name in options.only.split(",") if name.strip()}
    unknown = selected - set(SCENARIOS)
    if unknown:
        raise SystemExit(f"unknown scenario(s) {sorted(unknown)}; choose from {SCENARIOS}")

    sizes = Sizes.smoke() if options.smoke else Sizes()
    for field in dataclasses.fields(Sizes):
        value = getattr(options, field.name)
        if value is not None:
            setattr(sizes, field.name, value)

    full_default_run = not options.smoke and selected == set(SCENARIOS)
    if options.output_dir is not None:
        output_dirs = [options.output_dir]
    elif full_default_run:
        output_dirs = [REPO_DIR / "docs", BENCH_DIR / "results"]
    else:
        output_dirs = [Path(tempfile.mkdtemp(prefix="geargevent-bench-"))]

    pinning = not options.no_pin and (os.cpu_count() or 1) >= 2 and shutil.which("taskset")
    # Pools of 1000 connections need more descriptors than the usual soft limit.
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    c_worker, c_client = build_c_programs()
    workdir = Path(tempfile.mkdtemp(prefix="geargevent-bench-work-"))
    registry = ProcessRegistry(workdir)
    context = Context(
        registry=registry,
        workdir=workdir,
        python=str(ENV_PYTHON),
        c_worker=c_worker,
        c_client=c_client,
        sizes=sizes,
        scenarios=selected,
        pinning=bool(pinning),
        load=SystemLoad(
            quiet_budget=options.quiet_budget
            if options.quiet_budget is not None
            else (0.0 if options.smoke else 120.0)
        ),
    )

    def stop_on_signal(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, stop_on_signal)
    started = time.monotonic()
    command = options.command_label or ("make bench-smoke" if options.smoke else "make bench")
    results: dict[str, Any] = {
        "meta": {
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "command": command,
            "argv": " ".join(["bench/run.py", *sys.argv[1:]]),
            "smoke": options.smoke,
            "sizes": dataclasses.asdict(sizes),
            "pinning": bool(pinning),
            "machine": describe_machine(),
            **describe_software(str(ENV_PYTHON)),
        }
    }
    log.info("logs and server folders: %s", workdir)
    try:
        if "s1" in selected:
            results["s1"] = scenario_s1(context)
            results["s1_default_buckets"] = scenario_s1_default_buckets(context)
        if "s2" in selected:
            results["s2"] = scenario_s2(context, results.get("s1", []))
        if "s3" in selected:
            results["s3"] = scenario_s3(context)
        if "s4" in selected:
            results["s4"] = scenario_s4(context)
        if "s5" in selected:
            results["s5"] = scenario_s5(context)
        if "s6" in selected:
            results["s6"] = scenario_s6(context)
        if "profile" in selected:
            results["profile"] = scenario_profile(context)
    except KeyboardInterrupt:
        log.warning("interrupted; stopping every process this run started")
        registry.stop_all()
        return 130
    finally:
        registry.stop_all()

    results["meta"]["runtime_s"] = round(time.monotonic() - started, 1)
    results["meta"]["seconds_waited_for_quiet"] = round(context.load.waited, 1)
    results["targets"] = evaluate_targets(results)
    markdown = render_markdown(results)
    text = json.dumps(results, indent=2) + "\n"
    for directory in output_dirs:
        directory.mkdir(parents=True, exist_ok=True)
        if directory == BENCH_DIR / "results":
            (directory / "latest.json").write_text(text)
        elif directory == REPO_DIR / "docs":
            (directory / "benchmarks.md").write_text(markdown)
            (directory / "benchmarks.json").write_text(text)
        else:
            (directory / "benchmarks.md").write_text(markdown)
            (directory / "latest.json").write_text(text)
        log.info("wrote results to %s", directory)
    for item in results["targets"]:
        verdict = {True: "met", False: "MISSED", None: "not measured"}[item["met"]]
        log.info("%s %s: %s (%s)", item["scenario"], item["target"], verdict, item["measured"])
    log.info("total runtime %.0f s", results["meta"]["runtime_s"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
