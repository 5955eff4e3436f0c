"""Per-call metrics: tokens, TTFT, prefill and decode rates, wall and CPU time, peak RSS, energy."""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import psutil

from telesynth_tui.inference.energy import EnergyMeter, EnergyReading

# the energy source of a call whose model runs elsewhere (a remote server)
ENERGY_NOT_MEASURED = "not measured"


@dataclass
class CallMetrics:
    model: str
    kind: str  # "generate" or "embed"
    prompt_tokens: int = 0
    output_tokens: int = 0
    items: int = 0  # texts embedded
    ttft_s: float | None = None
    prefill_tok_s: float | None = None
    decode_tok_s: float | None = None
    wall_s: float = 0.0
    cpu_s: float = 0.0
    peak_rss_mb: float = 0.0
    energy_j: float = 0.0
    energy_source: str = ""
    energy_detail: str = ""
    stop_reason: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def joules_per_token(self) -> float | None:
        if not self.output_tokens or self.energy_source == ENERGY_NOT_MEASURED:
            return None
        return self.energy_j / self.output_tokens

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["joules_per_token"] = self.joules_per_token
        return data

    def energy_label(self) -> str:
        per_token = self.joules_per_token
        if self.energy_source == ENERGY_NOT_MEASURED:
            return f"energy {ENERGY_NOT_MEASURED} ({self.energy_detail or 'remote model'})"
        figure = f"{per_token:.4f} J/token" if per_token is not None else f"{self.energy_j:.3f} J"
        return f"{figure} ({self.energy_source})"


def decode_rate(n_out: int, t_first: float | None, t_last: float | None) -> float | None:
    """(n_out - 1) / (t_last - t_first): tokens after the first over the time they took."""
    if n_out < 2 or t_first is None or t_last is None or t_last <= t_first:
        return None
    return (n_out - 1) / (t_last - t_first)


class _RssSampler(threading.Thread):
    """Samples the process RSS every few milliseconds to catch the peak of one call."""

    def __init__(self, interval_s: float = 0.01) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.interval_s = interval_s
        self.process = psutil.Process()
        self.peak = self.process.memory_info().rss
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval_s):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return max(self.peak, self.process.memory_info().rss)


class CallMeter:
    """Wraps one model call: wall and CPU time, peak RSS and energy."""

    def __init__(self, energy: EnergyMeter) -> None:
        self.energy = energy
        self.t0 = 0.0
        self._cpu0 = 0.0
        self._sampler: _RssSampler | None = None

    def __enter__(self) -> CallMeter:
        self._sampler = _RssSampler()
        self._sampler.start()
        self.energy.start()
        self._cpu0 = time.process_time()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall_s = time.perf_counter() - self.t0
        self.cpu_s = time.process_time() - self._cpu0
        self.reading: EnergyReading = self.energy.stop(self.wall_s, self.cpu_s)
        assert self._sampler is not None
        self.peak_rss_mb = self._sampler.stop() / 1e6

    def fill(self, metrics: CallMetrics) -> CallMetrics:
        metrics.wall_s = self.wall_s
        metrics.cpu_s = self.cpu_s
        metrics.peak_rss_mb = self.peak_rss_mb
        metrics.energy_j = self.reading.joules
        metrics.energy_source = self.reading.source
        metrics.energy_detail = self.reading.detail
        return metrics
