"""Independent checks of every bundled formula in kg/formulas/*.toml.

Each formula id has a plain-Python implementation below, written from the textbook or
specification form with `math` only (never the TOML expression). For every worked example the
test checks that (a) the independent value matches the example output within its tolerance and
(b) the project's safe evaluator gives the same value. A formula added to the TOML files without
an independent check here makes `test_every_formula_has_an_independent_check` fail.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable
from pathlib import Path
from statistics import NormalDist

import pytest

from telesynth_tui.graph.formulas import FormulaSpec, load_formula_file

FORMULA_DIR = Path(__file__).resolve().parents[1] / "kg" / "formulas"

SPEED_OF_LIGHT = 299_792_458.0  # m/s
BOLTZMANN = 1.380649e-23  # J/K
T0_KELVIN = 290.0  # IEEE reference temperature for noise figure

# --- hand-written lookup tables ----------------------------------------------------------------

# TS 38.214 Table 5.2.2.1-2 (CQI table 1, up to 64QAM): CQI -> efficiency in bit/s/Hz.
CQI_TABLE_1 = {
    0: 0.0,
    1: 0.1523,
    2: 0.2344,
    3: 0.3770,
    4: 0.6016,
    5: 0.8770,
    6: 1.1758,
    7: 1.4766,
    8: 1.9141,
    9: 2.4063,
    10: 2.7305,
    11: 3.3223,
    12: 3.9023,
    13: 4.5234,
    14: 5.1152,
    15: 5.5547,
}
# TS 38.214 Table 5.2.2.1-3 (CQI table 2, up to 256QAM).
CQI_TABLE_2 = {
    0: 0.0,
    1: 0.1523,
    2: 0.3770,
    3: 0.8770,
    4: 1.4766,
    5: 1.9141,
    6: 2.4063,
    7: 2.7305,
    8: 3.3223,
    9: 3.9023,
    10: 4.5234,
    11: 5.1152,
    12: 5.5547,
    13: 6.2266,
    14: 6.9141,
    15: 7.4063,
}
CQI_TABLES = {1: CQI_TABLE_1, 2: CQI_TABLE_2}

# TS 38.101-1 Table 5.3.2-1 (FR1): (channel bandwidth MHz, SCS kHz) -> N_RB.
_NR_BW = (5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 60, 70, 80, 90, 100)
_NR_ROWS = {
    15: (25, 52, 79, 106, 133, 160, 188, 216, 242, 270, None, None, None, None, None),
    30: (11, 24, 38, 51, 65, 78, 92, 106, 119, 133, 162, 189, 217, 245, 273),
    60: (None, 11, 18, 24, 31, 38, 44, 51, 58, 65, 79, 93, 107, 121, 135),
}
NR_PRB_FR1 = {
    (bw, scs): n
    for scs, row in _NR_ROWS.items()
    for bw, n in zip(_NR_BW, row, strict=True)
    if n is not None
}

# TS 36.101 Table 5.6-1: channel bandwidth MHz -> N_RB.
LTE_PRB = {1.4: 6, 3.0: 15, 5.0: 25, 10.0: 50, 15.0: 75, 20.0: 100}


def erlang_b_loop(traffic: float, channels: int) -> float:
    """Erlang B from the explicit sum A^N/N! / sum_k A^k/k!, built term by term."""
    term = 1.0  # A^0 / 0!
    total = 1.0
    for k in range(1, channels + 1):
        term *= traffic / k
        total += term
    return term / total


def db(x: float) -> float:
    return 10.0 * math.log10(x)


def lin(x_db: float) -> float:
    return 10.0 ** (x_db / 10.0)


# --- independent implementations, one per formula id ------------------------------------------


def fspl_db_km_mhz(d_km, f_mhz):
    d_m, f_hz = d_km * 1e3, f_mhz * 1e6
    wavelength = SPEED_OF_LIGHT / f_hz
    return db((4 * math.pi * d_m / wavelength) ** 2)


def fspl_db_m_hz(d_m, f_hz):
    wavelength = SPEED_OF_LIGHT / f_hz
    return 2 * db(4 * math.pi * d_m / wavelength)


def wavelength_m(f_mhz):
    return SPEED_OF_LIGHT / (f_mhz * 1e6)


def _hata_urban(f_mhz, h_b_m, h_m_m, d_km):
    lf = math.log10(f_mhz)
    a_hm = (1.1 * lf - 0.7) * h_m_m - (1.56 * lf - 0.8)
    slope = 44.9 - 6.55 * math.log10(h_b_m)
    return 69.55 + 26.16 * lf - 13.82 * math.log10(h_b_m) - a_hm + slope * math.log10(d_km)


def hata_urban_small_medium_db(f_mhz, h_b_m, h_m_m, d_km):
    return _hata_urban(f_mhz, h_b_m, h_m_m, d_km)


def hata_suburban_db(f_mhz, h_b_m, h_m_m, d_km):
    correction = 2 * math.log10(f_mhz / 28) ** 2 + 5.4
    return _hata_urban(f_mhz, h_b_m, h_m_m, d_km) - correction


def two_ray_ground_loss_db(d_m, h_t_m, h_r_m, f_mhz):
    # Received/transmitted power ratio of the plane-earth model: (h_t h_r / d^2)^2. The
    # frequency does not enter the loss; it only places the breakpoint the model needs.
    ratio = (h_t_m * h_r_m / d_m**2) ** 2
    return -db(ratio)


def log_distance_path_loss_db(pl0_db, n_exp, d_m, d0_m):
    return pl0_db + n_exp * db(d_m / d0_m)


def cell_radius_log_distance_km(mapl_db, pl0_db, n_exp, d0_km):
    # Solve mapl = pl0 + 10 n log10(d/d0) for d by bisection on a log scale.
    lo, hi = math.log(d0_km) - 50, math.log(d0_km) + 50
    for _ in range(200):
        mid = (lo + hi) / 2
        if pl0_db + 10 * n_exp * math.log10(math.exp(mid) / d0_km) < mapl_db:
            lo = mid
        else:
            hi = mid
    return math.exp((lo + hi) / 2)


def doppler_shift_hz(v_kmh, f_mhz, theta_deg):
    v = v_kmh * 1000 / 3600
    return v / wavelength_m(f_mhz) * math.cos(theta_deg * math.pi / 180)


def fresnel_radius_midpoint_m(d_km, f_ghz):
    lam = SPEED_OF_LIGHT / (f_ghz * 1e9)
    half = d_km * 1e3 / 2
    return math.sqrt(lam * half * half / (2 * half))


def fresnel_radius_point_m(d1_km, d2_km, f_ghz):
    lam = SPEED_OF_LIGHT / (f_ghz * 1e9)
    d1, d2 = d1_km * 1e3, d2_km * 1e3
    return math.sqrt(lam * d1 * d2 / (d1 + d2))


def eirp_dbm(p_tx_dbm, g_tx_dbi, l_tx_db):
    return db(lin(p_tx_dbm) * lin(g_tx_dbi) / lin(l_tx_db))


def max_allowed_path_loss_db(
    eirp_dbm,
    rx_sens_dbm,
    g_rx_dbi,
    l_rx_db,
    fade_margin_db,
    interf_margin_db,
    penetration_loss_db,
    body_loss_db,
):
    # The signal reaching the receiver input must stay at or above the sensitivity.
    losses = l_rx_db + fade_margin_db + interf_margin_db + penetration_loss_db + body_loss_db
    required_at_antenna = rx_sens_dbm - g_rx_dbi + losses
    return eirp_dbm - required_at_antenna


def received_power_dbm(eirp_dbm, pl_db, g_rx_dbi, l_rx_db):
    p_mw = lin(eirp_dbm) / lin(pl_db) * lin(g_rx_dbi) / lin(l_rx_db)
    return db(p_mw)


def rx_sensitivity_dbm(b_hz, nf_db, snr_req_db):
    # Uses kT at 290 K rounded to whole dB (-174 dBm/Hz), as planning tools do.
    kt_dbm_per_hz = round(db(BOLTZMANN * T0_KELVIN * 1e3))
    return kt_dbm_per_hz + db(b_hz) + nf_db + snr_req_db


def fade_margin_lognormal_db(z, sigma_db):
    return z * sigma_db


def fade_margin_availability_db(availability, sigma_db):
    # Exact inverse of the normal CDF (the TOML uses a rational approximation).
    return NormalDist().inv_cdf(availability) * sigma_db


def rayleigh_fade_margin_db(availability):
    # Rayleigh power is exponential: P(power < mean/M) = 1 - exp(-1/M) = 1 - availability.
    m_lin = 1 / -math.log(availability)
    return db(m_lin)


def cable_loss_db(atten_db_per_100m, length_m, n_conn, conn_loss_db):
    return atten_db_per_100m / 100 * length_m + sum(conn_loss_db for _ in range(int(n_conn)))


def vswr_return_loss_db(vswr):
    gamma = (vswr - 1) / (vswr + 1)
    return -2 * db(gamma)


def vswr_mismatch_loss_db(vswr):
    gamma = (vswr - 1) / (vswr + 1)
    return -db(1 - gamma**2)


def dbd_to_dbi(g_dbd):
    dipole_gain_dbi = db(1.64)  # half-wave dipole, ~2.15 dBi
    return g_dbd + round(dipole_gain_dbi, 2)


def dbi_to_dbd(g_dbi):
    return g_dbi - round(db(1.64), 2)


def dbm_to_mw_conv(p_dbm):
    return 10 ** (p_dbm / 10)


def mw_to_dbm_conv(p_mw):
    return 10 * math.log10(p_mw)


def watt_to_dbm_conv(p_w):
    return 10 * math.log10(p_w * 1000)


def thermal_noise_ktb_dbm(t_k, b_hz):
    return 10 * math.log10(BOLTZMANN * t_k * b_hz / 1e-3)


def noise_floor_dbm(b_hz, nf_db):
    # -174 dBm/Hz is kT at 290 K rounded to whole dB.
    return -174 + db(b_hz) + nf_db


def snr_db(p_rx_dbm, n_dbm):
    return db(lin(p_rx_dbm) / lin(n_dbm))


def sinr_db(s_dbm, i_dbm, n_dbm):
    s_mw, i_mw, n_mw = lin(s_dbm), lin(i_dbm), lin(n_dbm)
    return db(s_mw / (i_mw + n_mw))


def ebno_db(snr_db, b_hz, r_bps):
    return db(lin(snr_db) * b_hz / r_bps)


def _friis(stages):
    """stages: list of (noise figure dB, gain dB); returns cascade noise figure in dB."""
    total, gain = 0.0, 1.0
    for i, (nf, g) in enumerate(stages):
        f = lin(nf)
        total += f if i == 0 else (f - 1) / gain
        gain *= lin(g)
    return db(total)


def friis_nf_two_stage_db(nf1_db, g1_db, nf2_db):
    return _friis([(nf1_db, g1_db), (nf2_db, 0.0)])


def friis_nf_three_stage_db(nf1_db, g1_db, nf2_db, g2_db, nf3_db):
    return _friis([(nf1_db, g1_db), (nf2_db, g2_db), (nf3_db, 0.0)])


def noise_temperature_k(nf_db):
    return T0_KELVIN * (lin(nf_db) - 1)


def shannon_capacity_mbps(b_mhz, snr_db):
    return b_mhz * 1e6 * math.log(1 + lin(snr_db), 2) / 1e6


def shannon_spectral_efficiency(snr_db):
    return math.log(1 + lin(snr_db)) / math.log(2)


def cqi_spectral_efficiency(cqi, cqi_table):
    return CQI_TABLES[int(cqi_table)][int(cqi)]


def cqi_throughput_mbps(cqi, cqi_table, b_mhz, layers, overhead):
    se = CQI_TABLES[int(cqi_table)][int(cqi)]
    return se * b_mhz * 1e6 * layers * (1 - overhead) / 1e6


def nr_max_prb_lookup(bw_mhz, scs_khz):
    return NR_PRB_FR1[(int(bw_mhz), int(scs_khz))]


def lte_prb_lookup(bw_mhz):
    return LTE_PRB[float(bw_mhz)]


def _nr_peak(layers, q_m, f_scale, n_prb, mu, oh):
    r_max = 948 / 1024
    symbol_s = 1e-3 / (14 * 2**mu)  # average OFDM symbol duration incl. cyclic prefix
    bits_per_symbol = layers * q_m * f_scale * r_max * n_prb * 12 * (1 - oh)
    return bits_per_symbol / symbol_s / 1e6


def nr_peak_throughput_mbps(layers, q_m, f_scale, n_prb, mu, oh):
    return _nr_peak(layers, q_m, f_scale, n_prb, mu, oh)


def nr_peak_throughput_from_bw_mbps(bw_mhz, mu, layers, q_m, f_scale, oh):
    n_prb = NR_PRB_FR1[(int(bw_mhz), 15 * 2 ** int(mu))]
    return _nr_peak(layers, q_m, f_scale, n_prb, mu, oh)


def lte_peak_throughput_mbps(bw_mhz, q_m, layers, oh):
    resource_elements_per_ms = LTE_PRB[float(bw_mhz)] * 12 * 2 * 7  # 2 slots of 7 symbols
    return resource_elements_per_ms * q_m * layers * (1 - oh) * 1000 / 1e6


def slot_duration_ms(scs_khz):
    mu = math.log2(scs_khz / 15)
    return 1.0 / 2**mu


def ofdm_symbol_duration_us(scs_khz):
    slots_per_ms = scs_khz / 15
    return 1000 / slots_per_ms / 14


def timing_advance_distance_m(n_ta, mu):
    t_c = 1 / (480e3 * 4096)  # NR basic time unit, TS 38.211
    step_s = 16 * 64 * t_c / 2**mu
    return SPEED_OF_LIGHT * n_ta * step_s / 2


def pusch_power_dbm(p_cmax_dbm, p0_dbm, mu, m_rb, alpha, pl_db, delta_tf_db, f_cl_db):
    bandwidth_term = db(m_rb) + mu * db(2)
    wanted = p0_dbm + bandwidth_term + alpha * pl_db + delta_tf_db + f_cl_db
    return p_cmax_dbm if wanted > p_cmax_dbm else wanted


def power_headroom_db(p_cmax_dbm, p0_dbm, mu, m_rb, alpha, pl_db, delta_tf_db, f_cl_db):
    wanted = p0_dbm + db(m_rb) + mu * db(2) + alpha * pl_db + delta_tf_db + f_cl_db
    return p_cmax_dbm - wanted


def erlang_b_blocking(a_erl, n_ch):
    return erlang_b_loop(a_erl, int(n_ch))


def offered_traffic_erlang(calls_per_hour, hold_s):
    return calls_per_hour / 3600 * hold_s


def rsrp_estimate_dbm(p_tot_dbm, n_prb, g_tx_dbi, l_tx_db, pl_db, g_rx_dbi):
    per_re_mw = lin(p_tot_dbm) / (12 * n_prb)
    return db(per_re_mw) + g_tx_dbi - l_tx_db - pl_db + g_rx_dbi


def rsrq_db(n_prb, rsrp_dbm, rssi_dbm):
    return db(n_prb * lin(rsrp_dbm) / lin(rssi_dbm))


INDEPENDENT: dict[str, Callable[..., float]] = {
    fn.__name__: fn
    for fn in (
        fspl_db_km_mhz,
        fspl_db_m_hz,
        wavelength_m,
        hata_urban_small_medium_db,
        hata_suburban_db,
        two_ray_ground_loss_db,
        log_distance_path_loss_db,
        cell_radius_log_distance_km,
        doppler_shift_hz,
        fresnel_radius_midpoint_m,
        fresnel_radius_point_m,
        eirp_dbm,
        max_allowed_path_loss_db,
        received_power_dbm,
        rx_sensitivity_dbm,
        fade_margin_lognormal_db,
        fade_margin_availability_db,
        rayleigh_fade_margin_db,
        cable_loss_db,
        vswr_return_loss_db,
        vswr_mismatch_loss_db,
        dbd_to_dbi,
        dbi_to_dbd,
        dbm_to_mw_conv,
        mw_to_dbm_conv,
        watt_to_dbm_conv,
        thermal_noise_ktb_dbm,
        noise_floor_dbm,
        snr_db,
        sinr_db,
        ebno_db,
        friis_nf_two_stage_db,
        friis_nf_three_stage_db,
        noise_temperature_k,
        shannon_capacity_mbps,
        shannon_spectral_efficiency,
        cqi_spectral_efficiency,
        cqi_throughput_mbps,
        nr_max_prb_lookup,
        lte_prb_lookup,
        nr_peak_throughput_mbps,
        nr_peak_throughput_from_bw_mbps,
        lte_peak_throughput_mbps,
        slot_duration_ms,
        ofdm_symbol_duration_us,
        timing_advance_distance_m,
        pusch_power_dbm,
        power_headroom_db,
        erlang_b_blocking,
        offered_traffic_erlang,
        rsrp_estimate_dbm,
        rsrq_db,
    )
}


# --- tests -----------------------------------------------------------------------------------


def _formula_files() -> list[Path]:
    return sorted(FORMULA_DIR.glob("*.toml"))


def _toml_ids() -> list[str]:
    ids: list[str] = []
    for path in _formula_files():
        with path.open("rb") as fh:
            ids.extend(str(table["id"]) for table in tomllib.load(fh).get("formula", []))
    return ids


@pytest.fixture(scope="module")
def specs() -> dict[str, FormulaSpec]:
    loaded: dict[str, FormulaSpec] = {}
    for path in _formula_files():
        file_specs, _ = load_formula_file(path)
        for spec in file_specs:
            loaded[spec.id] = spec
    return loaded


def test_formula_files_exist() -> None:
    assert _formula_files(), f"no formula files in {FORMULA_DIR}"


@pytest.mark.parametrize("path", _formula_files(), ids=lambda p: p.name)
def test_formula_file_loads_without_issues(path: Path) -> None:
    file_specs, issues = load_formula_file(path)
    assert issues == [], "\n".join(str(issue) for issue in issues)
    assert file_specs


def test_formula_ids_are_unique() -> None:
    ids = _toml_ids()
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})


def test_every_formula_has_an_independent_check() -> None:
    assert set(_toml_ids()) == set(INDEPENDENT)


@pytest.mark.parametrize("formula_id", sorted(INDEPENDENT))
def test_worked_example(formula_id: str, specs: dict[str, FormulaSpec]) -> None:
    assert formula_id in specs, f"{formula_id} is not loaded from {FORMULA_DIR}"
    spec = specs[formula_id]
    example = spec.example
    assert example is not None, f"{formula_id} has no worked example"
    assert example.tolerance > 0
    assert set(example.inputs) == {v.symbol for v in spec.variables}

    for var in spec.variables:
        value = example.inputs[var.symbol]
        assert var.unit, f"{formula_id}.{var.symbol} has no unit"
        assert var.min < var.max, f"{formula_id}.{var.symbol} has an empty range"
        assert var.min <= value <= var.max, f"{formula_id}.{var.symbol}={value} out of range"
        if var.integer:
            assert value == int(value), f"{formula_id}.{var.symbol} must be whole"

    expected = INDEPENDENT[formula_id](**example.inputs)
    assert math.isfinite(expected)
    assert abs(expected - example.output) <= example.tolerance, (
        f"{formula_id}: independent value {expected!r} vs example output {example.output!r}"
    )
    evaluated = spec.evaluate(example.inputs)
    assert abs(evaluated - expected) <= example.tolerance, (
        f"{formula_id}: evaluator gives {evaluated!r}, independent check {expected!r}"
    )
