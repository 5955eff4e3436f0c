"""Formula inputs come from their valid sets and satisfy the formula's validity conditions; a
formula that can never be evaluated is refused at import with a one-line error, and one that
slips into a project never stops planning."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from telesynth_tui.graph.formulas import (
    FormulaError,
    FormulaSpec,
    load_formula_file,
    nr_prb_allowed,
    sample_inputs,
)
from telesynth_tui.pipeline.plans import Planner
from telesynth_tui.project import Project

from .conftest import run_cli

KG = Path(__file__).resolve().parents[1] / "kg"


def _bundled() -> dict[str, FormulaSpec]:
    specs: dict[str, FormulaSpec] = {}
    for path in sorted((KG / "formulas").glob("*.toml")):
        loaded, issues = load_formula_file(path)
        assert not issues, issues
        specs.update({s.id: s for s in loaded})
    return specs


SPECS = _bundled()


@pytest.mark.parametrize("formula_id", sorted(SPECS))
def test_sampled_inputs_are_in_their_valid_sets(formula_id: str) -> None:
    spec = SPECS[formula_id]
    rng = random.Random(7)
    for _ in range(60):
        inputs = sample_inputs(spec, rng)
        spec.check_inputs(inputs)  # every value in its set, every condition true
        for var in spec.variables:
            value = inputs[var.symbol]
            if var.values:
                assert value in var.values, (var.symbol, value)
            assert var.min <= value <= var.max
        assert math.isfinite(spec.evaluate(inputs))


def test_the_reported_defects_cannot_be_sampled() -> None:
    rng = random.Random(3)
    scs_set = {15, 30, 60, 120, 240, 480, 960}
    for _ in range(300):
        assert sample_inputs(SPECS["slot_duration_ms"], rng)["scs_khz"] in scs_set
        pusch = sample_inputs(SPECS["pusch_power_dbm"], rng)
        assert pusch["alpha"] in {0, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1}
        peak = sample_inputs(SPECS["nr_peak_throughput_mbps"], rng)
        assert nr_prb_allowed(peak["n_prb"], 15 * 2 ** peak["mu"]) == 1
        ray = sample_inputs(SPECS["two_ray_ground_loss_db"], rng)
        breakpoint_m = 4 * math.pi * ray["h_t_m"] * ray["h_r_m"] * ray["f_mhz"] * 1e6 / 3e8
        assert ray["d_m"] > breakpoint_m * 0.999
        assert SPECS["two_ray_ground_loss_db"].evaluate(ray) > 0
        assert sample_inputs(SPECS["shannon_capacity_mbps"], rng)["b_mhz"] >= 1.4
    with pytest.raises(FormulaError, match="not one of"):
        SPECS["slot_duration_ms"].evaluate({"scs_khz": 489.0})
    bad_alpha = {**pusch, "alpha": 0.0741}
    with pytest.raises(FormulaError, match=r"alpha=0\.0741"):
        SPECS["pusch_power_dbm"].evaluate(bad_alpha)
    with pytest.raises(FormulaError, match="not one of"):
        SPECS["nr_peak_throughput_mbps"].evaluate({**peak, "n_prb": 238.0, "mu": 1.0})
    with pytest.raises(FormulaError, match="condition"):  # 270 PRBs exist only at 15 kHz
        SPECS["nr_peak_throughput_mbps"].evaluate({**peak, "n_prb": 270.0, "mu": 1.0})
    with pytest.raises(FormulaError, match="condition"):
        SPECS["two_ray_ground_loss_db"].evaluate(
            {"d_m": 17.9, "h_t_m": 30.0, "h_r_m": 1.5, "f_mhz": 900.0}
        )


HEADER = '[[formula]]\nid = "{id}"\nname = "{id}"\nexpression = "{expr}"\noutput_unit = "dB"\n'


def _formula(fid: str, expr: str, variables: str = "", extra: str = "") -> str:
    return HEADER.format(id=fid, expr=expr) + extra + variables


def _var(symbol: str, lo: float, hi: float, more: str = "") -> str:
    return (
        f'\n[[formula.variables]]\nsymbol = "{symbol}"\nunit = "dB"\nmin = {lo}\nmax = {hi}\n'
        + more
    )


def test_formulas_that_can_never_be_evaluated_are_refused_one_line_each(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        "\n".join(
            [
                _formula("good", "x + 1", _var("x", 0, 10)),
                _formula("min_above_max", "x + 1", _var("x", 10, 0)),
                _formula("log_of_negative", "log10(x)", _var("x", -10, -1)),
                _formula("huge_power", "10 ** (x * 1000)", _var("x", 10, 20)),
                _formula("never_valid", "x", _var("x", 0, 1), 'conditions = ["x > 2"]\n'),
                _formula("not_in_set", "x", _var("x", 0, 1, "values = [5]\n")),
                _formula("erlang_huge", "erlang_b(x, 1000000000)", _var("x", 1, 2)),
                _formula("twenty_k_terms", "+".join(["x"] * 20_000), _var("x", 0, 1)),
                _formula("nested_signs", "-" * 5000 + "x", _var("x", 0, 1)),
                _formula("nested_calls", "abs(" * 80 + "x" + ")" * 80, _var("x", 0, 1)),
            ]
        ),
        encoding="utf-8",
    )
    specs, issues = load_formula_file(path)
    assert [s.id for s in specs] == ["good"]
    text = path.read_text(encoding="utf-8").splitlines()
    by_id = {}
    for issue in issues:
        line = str(issue)
        assert "\n" not in line and len(line) < 400, line
        assert line.startswith(f"{path}:"), line
        assert issue.line is not None and text[issue.line - 1] == "[[formula]]"
        by_id[line.split("formula ", 1)[1].split(":")[0]] = line
    assert set(by_id) == {
        "min_above_max",
        "log_of_negative",
        "huge_power",
        "never_valid",
        "not_in_set",
        "erlang_huge",
        "twenty_k_terms",
        "nested_signs",
        "nested_calls",
    }
    assert "min 10 is above max 0" in by_id["min_above_max"]
    assert "no valid inputs" in by_id["log_of_negative"]
    assert "no valid inputs" in by_id["never_valid"] and "x > 2" in by_id["never_valid"]
    assert "over the 2000 limit" in by_id["twenty_k_terms"]
    assert "nested" in by_id["nested_signs"] and "nested" in by_id["nested_calls"]


def test_kg_import_names_the_file_and_line_and_imports_the_rest(tmp_path: Path) -> None:
    folder = tmp_path / "kg"
    (folder / "formulas").mkdir(parents=True)
    (folder / "formulas" / "deep.toml").write_text(
        _formula("deep", "-" * 5000 + "x", _var("x", 0, 1))
        + "\n"
        + _formula("wide", "+".join(["x"] * 20_000), _var("x", 0, 1)),
        encoding="utf-8",
    )
    (folder / "formulas" / "ok.toml").write_text(
        _formula("fine", "x * 2", _var("x", 0, 1)), encoding="utf-8"
    )
    project = tmp_path / "p"
    run_cli("init", "--empty", project=project, check=True)
    result = run_cli("kg", "import", str(folder), project=project)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "RecursionError" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "deep.toml" in line]
    assert len(errors) == 2, result.stderr
    assert errors[0].startswith(f"{folder / 'formulas' / 'deep.toml'}:1: error: formula deep:")
    lines = (folder / "formulas" / "deep.toml").read_text(encoding="utf-8").splitlines()
    second = [i for i, line in enumerate(lines, 1) if line == "[[formula]]"][1]
    assert f"deep.toml:{second}: error: formula wide: expression is" in errors[1]
    stats = json.loads(run_cli("kg", "stats", "--json", project=project, check=True).stdout)
    assert stats["formulas"] == 1


def test_a_user_formula_in_the_documented_format_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "user.toml"
    path.write_text(
        '[[formula]]\nid = "fspl_db"\nname = "Free-space path loss"\n'
        'expression = "20*log10(d_km) + 20*log10(f_mhz) + 32.45"\noutput_unit = "dB"\n'
        '[[formula.variables]]\nsymbol = "d_km"\nunit = "km"\nmin = 0.001\nmax = 100.0\n'
        '[[formula.variables]]\nsymbol = "f_mhz"\nunit = "MHz"\nmin = 100.0\nmax = 6000.0\n'
        "[formula.example]\ninputs = { d_km = 2.0, f_mhz = 1800.0 }\noutput = 103.575\n"
        "tolerance = 0.01\n",
        encoding="utf-8",
    )
    specs, issues = load_formula_file(path)
    assert not issues and specs[0].conditions == ()
    assert specs[0].to_record()["conditions"] == []


def test_a_bad_formula_in_the_project_never_stops_planning(bundled: Project) -> None:
    conn = bundled.connect()
    source = conn.execute("SELECT source_file_id FROM formulas LIMIT 1").fetchone()[0]
    variables = [{"symbol": "x", "unit": "dB", "min": -5.0, "max": -1.0}]
    conn.execute(
        "INSERT INTO formulas(slug, name, expression, variables, output_unit, source_file_id)"
        " VALUES ('broken', 'Broken', 'log10(x)', ?, 'dB', ?)",
        (json.dumps(variables), source),
    )
    conn.execute(
        "INSERT INTO formulas(slug, name, expression, variables, output_unit, source_file_id)"
        " VALUES ('unparsable', 'Unparsable', '1 +', ?, 'dB', ?)",
        (json.dumps(variables), source),
    )
    planner = Planner(conn, 4)
    plans = planner.plans({"maths": 400})
    assert len(plans) == 400
    assert not {p.payload["formula"] for p in plans} & {"broken", "unparsable"}
    assert set(planner.unusable) == {"broken", "unparsable"}


@pytest.mark.slow
def test_generate_runs_past_formulas_that_can_never_be_evaluated(tmp_path: Path) -> None:
    folder = tmp_path / "kg" / "formulas"
    folder.mkdir(parents=True)
    (folder / "bad.toml").write_text(
        "\n".join(
            [
                _formula("never_ok", "log10(x)", _var("x", -5, -1)),
                _formula("inverted", "x * 2", _var("x", 5, 1)),
                _formula("fine_one", "x * 2", _var("x", 1, 5)),
            ]
        ),
        encoding="utf-8",
    )
    project = tmp_path / "p"
    run_cli("init", "--empty", project=project, check=True)
    imported = run_cli("kg", "import", str(folder.parent), project=project)
    assert imported.returncode == 0
    errors = [line for line in imported.stderr.splitlines() if "error:" in line]
    assert len(errors) == 2 and all("bad.toml:" in e for e in errors), imported.stderr
    conn = Project.open(project).connect()  # one that slipped in before the check existed
    conn.execute(
        "INSERT INTO formulas(slug, name, expression, variables, output_unit, source_file_id)"
        " SELECT 'sneaked', 'Sneaked', 'log10(x)', ?, 'dB', source_file_id FROM formulas",
        (json.dumps([{"symbol": "x", "unit": "1", "min": -5.0, "max": -1.0}]),),
    )
    conn.close()
    result = run_cli("generate", "--n", "4", "--types", "maths", "--seed", "2", project=project)
    assert result.returncode == 0, result.stderr
    assert "4/4 plans" in result.stdout
