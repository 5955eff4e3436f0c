"""Crash safety of generation: `kill -9` at random moments, then `generate --resume`, in a loop;
and two resumes of one interrupted run started at the same time.

Figures: kills survived (the next resume continued), samples lost (plans done without their
samples, or samples of plans not done), plans stored twice, database integrity; for the two
resumes: samples per plan, duplicates, exported records and unique questions.
The KG-template generator writes exactly one sample per plan, so samples == plans when nothing
is lost or duplicated.
Results: bench/results/kill_resume.json and .md.
Run: .venv/bin/python bench/kill_resume.py [--plans 60] [--kills 8] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory

RESULTS = Path(__file__).parent / "results"
REPO = Path(__file__).resolve().parent.parent


def command(project: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "telesynth_tui.cli", "--project", str(project), *args]


def start(project: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELESYNTH_")}
    return subprocess.Popen(
        command(project, *args),
        cwd=REPO,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def kill_after(proc: subprocess.Popen[str], delay: float) -> bool:
    """SIGKILL the process we started after `delay` s; False if it had already finished."""
    try:
        proc.wait(timeout=delay)
        return False
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        return True


def plans_done(database: Path, run_id: int) -> int:
    try:
        conn = sqlite3.connect(database, timeout=30)
        try:
            row = conn.execute(
                "SELECT COUNT(*) FROM plans WHERE run_id = ? AND status = 'done'", (run_id,)
            ).fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return 0
    return int(row[0])


def kill_mid_generation(
    proc: subprocess.Popen[str], database: Path, at_least: int, extra: float
) -> float | None:
    """SIGKILL the process we started once `at_least` plans are done plus `extra` seconds (so the
    kill lands while plans are being generated and stored); None if it finished first. Returns
    the seconds from start to the kill."""
    t0 = time.perf_counter()
    while plans_done(database, 1) < at_least:
        if proc.poll() is not None:
            return None
        time.sleep(0.2)
    if not kill_after(proc, extra):
        return None
    return time.perf_counter() - t0


def state(database: Path, run_id: int) -> dict[str, object]:
    conn = sqlite3.connect(database, timeout=30)
    try:
        plans = conn.execute(
            "SELECT COUNT(*), SUM(status = 'done') FROM plans WHERE run_id = ?", (run_id,)
        ).fetchone()
        per_plan = conn.execute(
            "SELECT p.status, COUNT(s.id) FROM plans p LEFT JOIN samples s ON s.plan_id = p.id"
            " WHERE p.run_id = ? GROUP BY p.id",
            (run_id,),
        ).fetchall()
        samples = conn.execute(
            "SELECT COUNT(*) FROM samples WHERE run_id = ?", (run_id,)
        ).fetchone()[0]
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()
    return {
        "plans": plans[0],
        "plans_done": plans[1] or 0,
        "samples": samples,
        "done_without_samples": sum(1 for s, n in per_plan if s == "done" and n == 0),
        "samples_of_pending_plans": sum(n for s, n in per_plan if s != "done"),
        "plans_stored_twice": sum(1 for s, n in per_plan if n > 1),
        "integrity": integrity,
    }


def kill_loop(root: Path, plans: int, kills: int, rng: random.Random) -> dict[str, object]:
    project = root / "loop"
    subprocess.run(command(project, "init"), cwd=REPO, check=True, capture_output=True)
    args = ["generate", "--n", str(plans), "--seed", "3"]
    database = project / "telesynth.db"
    delays, done_at_kill, survived, resumes = [], [], 0, 0
    proc = start(project, *args)
    for index in range(kills):
        done = plans_done(database, 1)
        seconds = kill_mid_generation(proc, database, done + 1, rng.uniform(0.0, 4.0))
        if seconds is None:
            break
        delays.append(round(seconds, 1))
        done_at_kill.append(plans_done(database, 1))
        print(
            f"kill {index + 1} after {seconds:.1f} s: {done_at_kill[-1]}/{plans} plans done",
            flush=True,
        )
        proc = start(project, "generate", "--resume", "1")
        resumes += 1
        survived += 1
    _, err = proc.communicate(timeout=1800)
    final = state(project / "telesynth.db", 1)
    return {
        "plans": plans,
        "kills": len(delays),
        "kill_delays_s": delays,
        "plans_done_at_each_kill": done_at_kill,
        "kills_survived": survived if proc.returncode == 0 else survived - 1,
        "resumes": resumes,
        "last_exit": proc.returncode,
        "last_error": err.strip().splitlines()[-1] if err.strip() else "",
        "samples_lost": plans - final["samples"] if final["plans_stored_twice"] == 0 else None,
        **final,
    }


def two_resumes(root: Path, plans: int, delay: float) -> dict[str, object]:
    project = root / "two"
    subprocess.run(command(project, "init"), cwd=REPO, check=True, capture_output=True)
    first = start(project, "generate", "--n", str(plans), "--seed", "5")
    kill_mid_generation(first, project / "telesynth.db", 1, delay)
    before = state(project / "telesynth.db", 1)
    a = start(project, "generate", "--resume", "1")
    b = start(project, "generate", "--resume", "1")
    results = [p.communicate(timeout=1800) for p in (a, b)]
    codes = [a.returncode, b.returncode]
    errors = [err.strip().splitlines()[-1] if err.strip() else "" for _, err in results]
    after = state(project / "telesynth.db", 1)
    export = subprocess.run(
        command(project, "export", "1", "--format", "sft", "--json"),
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    records = [
        json.loads(line)
        for line in (project / "exports" / "run1-sft.jsonl").read_text().splitlines()
    ]
    questions = {r["messages"][1]["content"] for r in records if len(r.get("messages", [])) > 1}
    return {
        "plans": plans,
        "killed_s_after_first_plan": delay,
        "plans_done_at_kill": before["plans_done"],
        "resume_exit_codes": codes,
        "resume_errors": errors,
        "export_exit": export.returncode,
        "exported_records": len(records),
        "unique_questions": len(questions),
        **after,
    }


def render(data: dict[str, object]) -> str:
    loop, two = data["kill_loop"], data["two_resumes"]
    assert isinstance(loop, dict) and isinstance(two, dict)
    lines = [
        "# kill -9 and resume",
        "",
        f"Run: `{data['command']}`",
        "",
        "## Kill loop (generate, kill -9, resume, ...)",
        "",
        "| measure | value |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in loop.items()],
        "",
        "## Two resumes of one interrupted run at once",
        "",
        "| measure | value |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in two.items()],
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--plans", type=int, default=60)
    parser.add_argument("--kills", type=int, default=8)
    parser.add_argument("--two-plans", type=int, default=80)
    parser.add_argument("--two-delay", type=float, default=15.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with TemporaryDirectory(prefix="telesynth-kill-") as tmp:
        data = {
            "command": "bench/kill_resume.py " + " ".join(sys.argv[1:]),
            "kill_loop": kill_loop(Path(tmp), args.plans, args.kills, rng),
            "two_resumes": two_resumes(Path(tmp), args.two_plans, args.two_delay),
        }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "kill_resume.json").write_text(json.dumps(data, indent=2) + "\n")
    (RESULTS / "kill_resume.md").write_text(render(data))
    print(json.dumps(data, indent=2))


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
    print(f"{time.perf_counter() - t0:.0f} s", file=sys.stderr)
