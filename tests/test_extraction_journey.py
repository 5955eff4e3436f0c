"""A project built from the user's own folder only: `init --empty`, `kg import FOLDER`,
`generate --n 20` gives troubleshooting and multi-hop plans grounded in that folder's
extracted, accepted relations and never touches the bundled graph."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from .conftest import run_cli

USER_KB = Path(__file__).parent / "data" / "user_kb"


@pytest.mark.slow
def test_project_from_a_user_folder(tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    run_cli("init", "--empty", project=proj, check=True)
    out = run_cli("kg", "import", str(USER_KB), "--json", project=proj, check=True).stdout
    report = json.loads(out)
    assert report["counts"]["extracted"] >= 40 and report["counts"]["relations"] == 0
    result = run_cli("generate", "--n", "20", "--json", project=proj, check=True)
    run = json.loads(result.stdout)
    conn = sqlite3.connect(proj / "telesynth.db")
    sources = {r[0] for r in conn.execute("SELECT path FROM source_files")}
    assert sources == {str(p.resolve()) for p in USER_KB.glob("*.md")}
    plans = conn.execute("SELECT type, payload FROM plans WHERE run_id = ?", (run["run_id"],))
    by_type: dict[str, list[dict]] = {}
    for plan_type, payload in plans:
        by_type.setdefault(plan_type, []).append(json.loads(payload))
    assert by_type.get("troubleshooting") and by_type.get("multi_hop")
    # every relation a plan uses is an accepted relation extracted from the folder
    for payloads in by_type.values():
        for payload in payloads:
            for rid in payload.get("relation_ids", []):
                status, origin, path = conn.execute(
                    "SELECT r.status, r.origin, sf.path FROM relations r JOIN source_files sf"
                    " ON sf.id = r.source_file_id WHERE r.id = ?",
                    (rid,),
                ).fetchone()
                assert (status, origin) == ("accepted", "extracted") and path in sources
    symptoms = {p["symptom"] for p in by_type["troubleshooting"]}
    assert symptoms & {
        "S1 Association Lost",
        "Radio Link Degraded",
        "SCTP Heartbeat Timeout",
        "S1 Setup Rejected",
        "Radio Link Down",
    }
    accepted = conn.execute(
        "SELECT COUNT(*) FROM samples WHERE run_id = ? AND status = 'accepted'", (run["run_id"],)
    ).fetchone()[0]
    assert accepted >= 8
