"""The real `telesynth` command in subprocesses, with the network blocked."""

from __future__ import annotations

import json
from pathlib import Path

from .conftest import BUNDLED_KG, run_cli

CHAIN = "Alarm -indicates-> RootCause -resolved_by-> Action -adjusts-> Parameter"


def test_init_imports_bundled_knowledge_and_meets_the_minimums(tmp_path: Path) -> None:
    proj = tmp_path / "p"
    result = run_cli("init", "--json", project=proj, check=True)
    data = json.loads(result.stdout)
    stats = data["stats"]
    assert data["issues"] == []  # the bundled knowledge imports without a single warning
    assert stats["documents"] >= 40
    assert stats["entities"] >= 200
    assert stats["relations"] >= 600
    assert stats["formulas"] >= 25
    assert stats["relations_with_evidence"] == stats["relations"]
    assert (proj / "telesynth.toml").is_file() and (proj / "telesynth.db").is_file()
    # a second init changes nothing
    again = json.loads(run_cli("init", "--json", project=proj, check=True).stdout)
    assert again["stats"] == stats


def test_kg_commands_on_a_project(tmp_path: Path) -> None:
    proj = tmp_path / "p"
    run_cli("init", project=proj, check=True)
    stats = run_cli("kg", "stats", project=proj, check=True).stdout
    assert stats.startswith("knowledge graph:")
    search = json.loads(
        run_cli(
            "kg", "search", "VSWR alarm after antenna work", "--json", project=proj, check=True
        ).stdout
    )
    assert search["items"] and search["n_tokens"] <= search["budget_tokens"]
    show = json.loads(run_cli("kg", "show", "RSRP", "--json", project=proj, check=True).stdout)
    assert show["type"] == "KPI" and show["relations"]
    pattern = json.loads(
        run_cli("kg", "pattern", CHAIN, "--json", "--limit", "3", project=proj, check=True).stdout
    )
    assert len(pattern["paths"]) == 3
    first = pattern["paths"][0]
    path = json.loads(
        run_cli(
            "kg",
            "path",
            first[0]["subject"],
            first[-1]["object"],
            "--json",
            project=proj,
            check=True,
        ).stdout
    )
    assert 1 <= len(path["path"]) <= 3


def test_errors_are_one_line_with_non_zero_exit(tmp_path: Path) -> None:
    missing = run_cli("kg", "stats", project=tmp_path / "nowhere")
    assert missing.returncode == 2
    assert missing.stderr.strip().count("\n") == 0 and "no telesynth project" in missing.stderr
    assert "Traceback" not in missing.stderr

    proj = tmp_path / "p"
    run_cli("init", "--empty", project=proj, check=True)
    bad = tmp_path / "bad.md"
    bad.write_bytes(b"\x00\x01binary")
    result = run_cli("kg", "import", str(bad), project=proj)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"{bad}: error: binary file" in result.stderr

    unknown = run_cli("kg", "show", "No Such Thing", project=proj)
    assert unknown.returncode == 2 and "no entity named 'No Such Thing'" in unknown.stderr

    (proj / "telesynth.toml").write_text("[retrieval\n")
    broken = run_cli("kg", "stats", project=proj)
    assert broken.returncode == 2 and "telesynth.toml: invalid TOML" in broken.stderr


def test_partial_import_keeps_good_files_and_exits_zero(tmp_path: Path) -> None:
    proj = tmp_path / "p"
    run_cli("init", "--empty", project=proj, check=True)
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "good.md").write_text("# Good\nThe eNodeB raised a VSWR alarm on sector 2.\n")
    (folder / "empty.md").write_text("")
    (folder / "image.png").write_bytes(b"\x89PNG")
    result = run_cli("kg", "import", str(folder), project=proj, check=True)
    assert "empty.md: error: empty file" in result.stderr
    assert "image.png: warning: unsupported file type '.png'" in result.stderr
    assert "files: 1 imported, 0 unchanged, 1 failed, 1 skipped" in result.stdout


def test_bundled_folder_exists() -> None:
    assert (BUNDLED_KG / "README.md").is_file()
