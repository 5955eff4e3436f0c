"""Energy of a model call: RAPL counters where readable, otherwise a labelled estimate.

RAPL: the package domains under /sys/class/powercap (intel-rapl:N, amd-rapl... with `energy_uj`
and `max_energy_range_uj`), read before and after; a counter that went down wrapped around.
Estimate: idle + (TDP - idle) x CPU utilisation, times the wall time, where utilisation is the
process CPU time over (wall time x cores). Every figure carries its source.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

POWERCAP_ROOT = Path("/sys/class/powercap")
_PACKAGE_RE = re.compile(r"^[a-z-]*rapl:\d+$")  # package domains, not subzones (rapl:0:0)


@dataclass(frozen=True)
class PowerModel:
    """The assumptions of the estimate, shown next to every estimated figure."""

    tdp_watts: float = 15.0
    idle_watts: float = 2.0
    cores: int = os.cpu_count() or 1

    def describe(self) -> str:
        return (
            f"estimate: idle {self.idle_watts:g} W + ({self.tdp_watts:g} W TDP - idle) x CPU "
            f"utilisation over {self.cores} cores"
        )


@dataclass(frozen=True)
class EnergyReading:
    joules: float
    source: str  # "rapl" or "estimate"
    detail: str  # the domains read, or the power model used

    def per_token(self, tokens: int) -> float | None:
        return self.joules / tokens if tokens > 0 else None


@dataclass(frozen=True)
class _Domain:
    name: str
    energy: Path
    max_range: int


def find_rapl_domains(root: Path = POWERCAP_ROOT) -> list[_Domain]:
    """Readable package-level RAPL domains (empty when there are none or they are not readable)."""
    domains: list[_Domain] = []
    if not root.is_dir():
        return domains
    for zone in sorted(root.iterdir()):
        if not _PACKAGE_RE.match(zone.name):
            continue
        energy = zone / "energy_uj"
        try:
            int(energy.read_text())
            max_range = int((zone / "max_energy_range_uj").read_text())
        except (OSError, ValueError):
            continue
        name = (zone / "name").read_text().strip() if (zone / "name").exists() else zone.name
        domains.append(_Domain(name, energy, max_range))
    return domains


class EnergyMeter:
    """Measures one interval: `start()`, then `stop(wall_s, cpu_s)` gives an EnergyReading."""

    def __init__(self, power: PowerModel | None = None, root: Path = POWERCAP_ROOT) -> None:
        self.power = power or PowerModel()
        self.domains = find_rapl_domains(root)
        self._start: list[int] = []

    @property
    def source(self) -> str:
        return "rapl" if self.domains else "estimate"

    def start(self) -> None:
        self._start = self._read()

    def _read(self) -> list[int]:
        values = []
        for domain in self.domains:
            try:
                values.append(int(domain.energy.read_text()))
            except (OSError, ValueError):
                values.append(-1)
        return values

    def stop(self, wall_s: float, cpu_s: float) -> EnergyReading:
        if self.domains and self._start and -1 not in self._start:
            end = self._read()
            if -1 not in end:
                total_uj = 0
                for domain, before, after in zip(self.domains, self._start, end, strict=True):
                    delta = after - before
                    if delta < 0:  # the counter wrapped around its range
                        delta += domain.max_range
                    total_uj += delta
                names = "+".join(d.name for d in self.domains)
                return EnergyReading(total_uj / 1e6, "rapl", f"RAPL {names}")
        return self.estimate(wall_s, cpu_s)

    def estimate(self, wall_s: float, cpu_s: float) -> EnergyReading:
        p = self.power
        utilisation = min(1.0, cpu_s / (wall_s * p.cores)) if wall_s > 0 else 0.0
        watts = p.idle_watts + (p.tdp_watts - p.idle_watts) * utilisation
        return EnergyReading(watts * wall_s, "estimate", p.describe())
