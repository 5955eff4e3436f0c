from __future__ import annotations

from pathlib import Path

import pytest

from telesynth_tui.inference.energy import EnergyMeter, PowerModel, find_rapl_domains


def make_zone(root: Path, name: str, label: str, energy: int, max_range: int) -> Path:
    zone = root / name
    zone.mkdir(parents=True)
    (zone / "name").write_text(label + "\n")
    (zone / "energy_uj").write_text(f"{energy}\n")
    (zone / "max_energy_range_uj").write_text(f"{max_range}\n")
    return zone


def test_rapl_package_domains_are_read_and_wraparound_handled(tmp_path: Path) -> None:
    pkg0 = make_zone(tmp_path, "intel-rapl:0", "package-0", 1_000_000, 10_000_000)
    pkg1 = make_zone(tmp_path, "intel-rapl:1", "package-1", 9_500_000, 10_000_000)
    make_zone(tmp_path, "intel-rapl:0:0", "core", 5, 10_000_000)  # a subzone: not counted again
    assert [d.name for d in find_rapl_domains(tmp_path)] == ["package-0", "package-1"]
    meter = EnergyMeter(root=tmp_path)
    assert meter.source == "rapl"
    meter.start()
    (pkg0 / "energy_uj").write_text("3500000\n")  # +2.5 J
    (pkg1 / "energy_uj").write_text("500000\n")  # wrapped: +1.0 J
    reading = meter.stop(wall_s=1.0, cpu_s=1.0)
    assert reading.source == "rapl"
    assert reading.joules == pytest.approx(3.5)
    assert reading.detail == "RAPL package-0+package-1"
    assert reading.per_token(7) == pytest.approx(0.5)


def test_unreadable_counters_fall_back_to_a_labelled_estimate(tmp_path: Path) -> None:
    zone = make_zone(tmp_path, "intel-rapl:0", "package-0", 0, 100)
    (zone / "energy_uj").chmod(0o000)
    (zone / "energy_uj").write_text("not a number")
    meter = EnergyMeter(PowerModel(tdp_watts=20, idle_watts=4, cores=2), root=tmp_path)
    assert meter.source == "estimate"
    meter.start()
    reading = meter.stop(wall_s=2.0, cpu_s=2.0)  # one of two cores busy for 2 s
    assert reading.source == "estimate"
    assert reading.joules == pytest.approx((4 + 16 * 0.5) * 2.0)
    assert "idle 4 W" in reading.detail and "20 W TDP" in reading.detail


def test_missing_powercap_tree_estimates(tmp_path: Path) -> None:
    meter = EnergyMeter(PowerModel(tdp_watts=10, idle_watts=2, cores=4), root=tmp_path / "none")
    meter.start()
    reading = meter.stop(wall_s=1.0, cpu_s=8.0)  # utilisation capped at 100 %
    assert reading.joules == pytest.approx(10.0) and reading.source == "estimate"
    assert reading.per_token(0) is None
