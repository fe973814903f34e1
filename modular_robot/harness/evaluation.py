"""The regression suite behind `modular-robot eval`: validate scenarios, run them, write the report.

Every scenario file is validated before anything runs, so a typo in the fortieth file costs seconds,
not the thirty-nine runs before it. Each scenario then runs in lockstep in a fresh world
(`runner.run_scenario`) inside a spawned worker process; ``--jobs N`` workers each get their own
ROS domain so that parallel episodes never hear each other's topics (as in benchmarks/replan_eval.py).
A worker's console output goes to ``<out>/<name>/log.txt``, leaving the terminal to one progress
line per scenario. Results keep the input order whatever order the workers finish in.

Nothing here imports rclpy at module level: input validation and reporting work without ROS, and
the parent process only loads the runner to check that it can record when asked to.
"""

from __future__ import annotations

import fcntl
import inspect
import json
import multiprocessing
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from modular_robot.core.robot_model import ROBOT_KINDS
from modular_robot.scenarios.eval_report import summarize, write_reports
from modular_robot.scenarios.scenario import Scenario, ScenarioError, load_scenario

MAX_JOBS = 32
# Workers claim ROS domains in [120, 200): tests use 1-100 (tests/conftest.py), `make test` 200-229,
# and Fast DDS accepts ids up to 232.
_DOMAIN_BASE = 120
_DOMAIN_SPREAD = 80
# One lock file per domain: a worker holds its domain's lock for its whole life, so that workers of
# suites running at the same time on this machine never share a domain.
_DOMAIN_LOCKS = Path(tempfile.gettempdir()) / "modular_robot_eval_domains"
# Files a run writes into its scenario folder; old copies are removed first so that the report
# never links an image or recording from an earlier run.
_ARTIFACTS = ("before.png", "after.png", "episode.mcap", "log.txt")
# A transcript entry whose text says this is a critic verdict (executor.py writes "step N pre-check ok ...").
_VERDICT_MARKERS = ("pre-check", "post-check")


class EvalInputError(Exception):
    """Input that stops the suite before any scenario runs; `problems` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class Job:
    """One scenario to run, with everything a worker process needs."""

    index: int
    scenario: Scenario
    stack: str
    out_dir: Path
    renderer: str
    record: bool


def scenario_files(paths: list[str | Path]) -> list[Path]:
    """Return the scenario files named by `paths`: each directory's ``*.yaml`` sorted, files as given.

    Raises:
        EvalInputError: if a path does not exist or a directory holds no ``*.yaml`` file.
    """
    files: list[Path] = []
    problems: list[str] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(p for p in path.glob("*.yaml") if p.is_file())
            if not found:
                problems.append(f"{path}: no *.yaml scenario files in this directory")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            problems.append(f"{path}: no such file or directory")
    if problems:
        raise EvalInputError(problems)
    return files


def load_scenarios(files: list[Path]) -> list[Scenario]:
    """Load and validate every file; report every bad one, not only the first.

    Raises:
        EvalInputError: with each file's ``file:line: reason``, and for two scenarios with one name
            (their report folders would overwrite each other).
    """
    scenarios: list[Scenario] = []
    problems: list[str] = []
    for path in files:
        try:
            scenarios.append(load_scenario(path))
        except ScenarioError as error:
            problems.append(str(error))
    first_source: dict[str, str] = {}
    for scenario in scenarios:
        other = first_source.setdefault(scenario.name, scenario.source)
        if other != scenario.source:
            problems.append(f"{scenario.source}: scenario name {scenario.name!r} is also used by {other}; "
                            "names must be unique (each gets its own report folder)")
    if problems:
        raise EvalInputError(problems)
    return scenarios


def select(scenarios: list[Scenario], name_filter: str | None = None, category: str | None = None) -> list[Scenario]:
    """Return the scenarios whose name contains `name_filter` and whose category is `category`."""
    return [s for s in scenarios
            if (name_filter is None or name_filter in s.name) and (category is None or s.category == category)]


def stack_for(scenario: Scenario, override: str | None = None) -> str:
    """Return the stack file that drives `scenario`: `override`, else its robot kind's stack (relative to
    the package's data, as `modular-robot run`'s and `up`'s defaults are)."""
    return override if override is not None else ROBOT_KINDS[scenario.robot].stack


def check_stacks(paths: set[str]) -> None:
    """Load every stack file once, so that a broken one stops the suite before it starts.

    Raises:
        EvalInputError: with each stack file's problem.
    """
    from modular_robot.core.stack import StackError, load_stack

    problems = []
    for path in sorted(paths):
        try:
            load_stack(path)
        except StackError as error:
            problems.append(str(error))
    if problems:
        raise EvalInputError(problems)


def check_recording() -> None:
    """Make sure the installed runner can record an episode to MCAP.

    Raises:
        EvalInputError: if `run_scenario` takes no ``record`` argument.
    """
    from modular_robot.harness.runner import run_scenario

    if "record" not in inspect.signature(run_scenario).parameters:
        raise EvalInputError([("this version of modular_robot.harness.runner cannot record episodes to MCAP "
                               "(run_scenario has no 'record' parameter); pass --no-record")])


def claim_domain(first: int = _DOMAIN_BASE, count: int = _DOMAIN_SPREAD,
                 locks: Path = _DOMAIN_LOCKS) -> tuple[int, IO[str]]:
    """Claim a ROS domain that no other process on this machine has claimed; return it and its lock.

    The claim lasts while the returned file stays open (the operating system drops the lock when
    the process ends, however it ends). The search starts at a place given by the process id.

    Raises:
        RuntimeError: if every domain in [first, first + count) is claimed.
    """
    locks.mkdir(parents=True, exist_ok=True)
    start = os.getpid() % count
    for offset in range(count):
        domain = first + (start + offset) % count
        handle = open(locks / f"{domain}.lock", "w", encoding="utf-8")  # noqa: SIM115 - held open on purpose
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        return domain, handle
    raise RuntimeError(f"every ROS domain in [{first}, {first + count}) is taken by other eval workers")


def rasterizer_threads(cpu_count: int, workers: int) -> int:
    """Return how many threads Mesa's llvmpipe may rasterise with in each of `workers` on `cpu_count` cores.

    Each worker keeps a core busy by itself (stepping, nodes, DDS), so llvmpipe gets only the cores
    left over. Its default, a thread per core, costs CPU where none is free: on 2 cores a 640x480
    frame of sorting_01 took 24 ms of CPU with it against 18 ms rasterised in the calling thread (0).
    """
    return max(0, cpu_count // workers - 1)


_claimed: IO[str] | None = None


def _init_worker(render_threads: int) -> None:
    global _claimed
    # Before rclpy creates a context in this process: the domain is read then.
    domain, _claimed = claim_domain()
    os.environ["ROS_DOMAIN_ID"] = str(domain)
    # Before the first world loads EGL; a value the user set wins.
    os.environ.setdefault("LP_NUM_THREADS", str(render_threads))


@contextmanager
def _output_to(log: IO[str]) -> Iterator[None]:
    """Send this process's stdout and stderr, C libraries' included, to `log` for a while."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)


def run_job(job: Job) -> dict:
    """Run one scenario (in a worker process); return its result as a dict, or its error.

    Returns:
        ``{"result": asdict(ScenarioResult)}``, or ``{"error": text, "wall_s": s}`` when the run
        raised; the traceback is in the scenario's log.txt.
    """
    folder = job.out_dir / job.scenario.name
    folder.mkdir(parents=True, exist_ok=True)
    for name in _ARTIFACTS:
        (folder / name).unlink(missing_ok=True)
    started = time.monotonic()
    # Passed only when recording, so that --no-record also works with a runner that cannot record.
    options = {"record": True} if job.record else {}
    with open(folder / "log.txt", "w", encoding="utf-8") as log, _output_to(log):
        try:
            # Imported here so that what PyBullet prints on import lands in the log, not on the console.
            from modular_robot.core.stack import load_stack
            from modular_robot.harness.runner import run_scenario

            result = run_scenario(job.scenario, folder, load_stack(job.stack), renderer=job.renderer,
                                  verbose=True, **options)
        except Exception as error:  # noqa: BLE001 - one broken scenario is a failed scenario, not a lost suite
            traceback.print_exc()
            return {"error": f"{type(error).__name__}: {error}", "wall_s": round(time.monotonic() - started, 3)}
    return {"result": asdict(result)}


def _tokens(transcript: list[dict]) -> dict[str, int]:
    """Sum the token counts that transcript entries carry (model backends report them; rules do not)."""
    total: dict[str, int] = {}
    for entry in transcript:
        for key, count in (entry.get("tokens") or {}).items():
            total[key] = total.get(key, 0) + int(count)
    return total


def scenario_entry(job: Job, outcome: dict) -> dict:
    """Return results.json's entry for one scenario from its job and what its worker returned."""
    scenario = job.scenario
    folder = job.out_dir / scenario.name
    if "result" in outcome:
        result = outcome["result"]
    else:
        result = {"passed": False, "false_success": False, "predicates": [], "wall_s": outcome["wall_s"],
                  "sim_s": None, "transcript": [], "first_motion_ms": []}
    transcript = result["transcript"]
    entry = {
        "name": scenario.name,
        "category": scenario.category,
        "source": scenario.source,
        "robot": scenario.robot,
        "stack": job.stack,
        "passed": result["passed"],
        "false_success": result["false_success"],
        "predicates": result["predicates"],
        "verdicts": [e for e in transcript if any(m in e.get("text", "") for m in _VERDICT_MARKERS)],
        "wall_s": result["wall_s"],
        "sim_s": result["sim_s"],
        "first_motion_ms": result["first_motion_ms"],
        "transcript": transcript,
    }
    tokens = _tokens(transcript)
    if tokens:
        entry["tokens"] = tokens
    if "error" in outcome:
        entry["error"] = outcome["error"]
    images = {label: f"{scenario.name}/{label}.png" for label in ("before", "after")
              if (folder / f"{label}.png").is_file()}
    if images:
        entry["images"] = images
    for key, name in (("log", "log.txt"), ("mcap", "episode.mcap")):
        if (folder / name).is_file():
            entry[key] = f"{scenario.name}/{name}"
    return entry


class _Progress:
    """One line per finished scenario and, on a terminal, a bar below them that redraws in place."""

    _BAR_WIDTH = 30

    def __init__(self, total: int, name_width: int, stream: IO[str]) -> None:
        self.total = total
        self.done = 0
        self.name_width = name_width
        self.stream = stream
        self.tty = stream.isatty()
        self._draw()

    def _draw(self) -> None:
        if self.tty:
            filled = self._BAR_WIDTH * self.done // max(self.total, 1)
            self.stream.write(f"\r[{'#' * filled}{'-' * (self._BAR_WIDTH - filled)}] {self.done}/{self.total}")
            self.stream.flush()

    def finished(self, entry: dict) -> None:
        """Print the line of a finished scenario."""
        self.done += 1
        status = "PASS" if entry["passed"] else ("ERROR" if "error" in entry else "FAIL")
        if entry["false_success"]:
            status += " (false success)"
        width = len(str(self.total))
        if self.tty:
            self.stream.write("\r\033[K")
        self.stream.write(f"[{self.done:>{width}}/{self.total}] {entry['name']:<{self.name_width}}  "
                          f"{status}  {entry['wall_s']:.1f} s\n")
        self._draw()
        # Piped output (CI logs) should show each line as its scenario ends, not all at the end.
        self.stream.flush()

    def close(self) -> None:
        """Remove the bar."""
        if self.tty:
            self.stream.write("\r\033[K")
            self.stream.flush()


def run_jobs(jobs: list[Job], workers: int, stream: IO[str] = sys.stdout) -> list[dict]:
    """Run `jobs` in `workers` spawned processes, each on its own ROS domain; return entries in job order."""
    context = multiprocessing.get_context("spawn")
    entries: list[dict | None] = [None] * len(jobs)
    progress = _Progress(len(jobs), max(len(j.scenario.name) for j in jobs), stream)
    try:
        threads = rasterizer_threads(os.cpu_count() or 1, workers)
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(threads,)) as pool:
            futures: dict[Future, Job] = {pool.submit(run_job, job): job for job in jobs}
            for future in as_completed(futures):
                job = futures[future]
                try:
                    outcome = future.result()
                except Exception as error:  # noqa: BLE001 - a worker that died fails its scenario only
                    outcome = {"error": f"worker process failed: {type(error).__name__}: {error}", "wall_s": 0.0}
                entries[job.index] = scenario_entry(job, outcome)
                progress.finished(entries[job.index])
    finally:
        progress.close()
    return entries  # type: ignore[return-value]


def run_eval(paths: list[str], out: str | Path, stack: str | None = None, jobs: int = 1,
             allow_fail: bool = False, renderer: str = "auto", record: bool = True,
             name_filter: str | None = None, category: str | None = None) -> int:
    """Validate, run and report a suite of scenarios; return the exit code of `modular-robot eval`.

    Args:
        paths: Scenario directories (every ``*.yaml``, sorted) and files.
        out: Report folder: results.json, report.md, report.html and a folder per scenario.
        stack: Stack file for every scenario; None picks one per robot kind (`robot_model.ROBOT_KINDS`).
        jobs: Worker processes.
        allow_fail: Exit 0 even when scenarios fail.
        renderer: "auto", "egl" or "tiny".
        record: Record each episode to ``<out>/<name>/episode.mcap``.
        name_filter: Run only scenarios whose name contains this.
        category: Run only scenarios of this category.

    Returns:
        0 when every scenario passed (or `allow_fail`), 1 when one failed, 2 for bad input; nothing
        runs on bad input.
    """
    try:
        if not 1 <= jobs <= MAX_JOBS:
            raise EvalInputError([f"--jobs must be between 1 and {MAX_JOBS}, got {jobs}"])
        scenarios = load_scenarios(scenario_files(paths))
        chosen = select(scenarios, name_filter, category)
        if not chosen:
            wanted = [f"{flag} {value!r}" for flag, value in (("--filter", name_filter), ("--category", category))
                      if value is not None]
            raise EvalInputError([f"none of the {len(scenarios)} scenarios matches {' '.join(wanted)}"])
        stacks = [stack_for(s, stack) for s in chosen]
        check_stacks(set(stacks))
        if record:
            check_recording()
    except EvalInputError as error:
        for problem in error.problems:
            print(f"error: {problem}", file=sys.stderr)
        print("error: no scenario was run", file=sys.stderr)
        return 2
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    workers = min(jobs, len(chosen))
    skipped = len(scenarios) - len(chosen)
    print(f"eval: {len(chosen)} scenarios" + (f" ({skipped} not selected)" if skipped else "")
          + f", {workers} worker{'s' if workers > 1 else ''}; logs and report in {out_dir}/", flush=True)
    started = time.monotonic()
    work = [Job(i, s, st, out_dir, renderer, record) for i, (s, st) in enumerate(zip(chosen, stacks))]
    entries = run_jobs(work, workers)
    summary = summarize(entries)
    summary["wall_s"] = round(time.monotonic() - started, 1)
    results = {"summary": summary, "scenarios": entries}
    (out_dir / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    _, page = write_reports(results, out_dir)
    print(f"{summary['passed']}/{summary['total']} scenarios passed, {summary['false_success']} false "
          f"success{'es' if summary['false_success'] != 1 else ''}; report: {page}")
    all_passed = summary["passed"] == summary["total"]
    print("PASS" if all_passed else "FAIL")
    return 0 if all_passed or allow_fail else 1
