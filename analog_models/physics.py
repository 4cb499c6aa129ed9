"""Device and circuit equations of the analog model, as pure functions of a :class:`MacroConfig`.

Everything here is normalised so that every dependence equals exactly 1 at the nominal operating
point of :class:`~analog_models.config.EnvironmentConfig`; the published figures are therefore
reproduced unchanged at nominal, and supply/temperature/bias move them as described in
``docs/analog_model.md``.
"""

from __future__ import annotations

import math

import numpy as np

from .config import MacroConfig

__all__ = [
    "fet_scale", "low_temp_factor", "tmr_temp_factor", "tmr_bias_factor", "eval_mtj_bias_v",
    "sense_mtj_bias_v", "branch_resistances_ohm", "slope_ps_per_ohm", "fixed_delay_ps",
    "fire_time_float_ps", "nominal_fire_time_ps", "column_time_sigma_ps",
    "switching_probability", "write_error_rate", "sense_low_probability",
    "sense_misread_probability", "retention_flip_probability",
]


def _phi(x):
    """Standard normal CDF (numpy only; erf via math for scalars, vectorised)."""
    return 0.5 * (1.0 + np.vectorize(math.erf, otypes=[float])(np.asarray(x, float) / math.sqrt(2.0)))


# ---- device -------------------------------------------------------------------------------

def fet_scale(cfg: MacroConfig) -> float:
    """FET on-resistance relative to nominal: mobility (T/T0)**a times overdrive (V0-Vt)/(V-Vt)."""
    e = cfg.env
    vt = cfg.readout.comparator_vth_v
    t_ratio = e.temperature_k / e.nominal_temperature_k
    return t_ratio ** cfg.device.fet_temp_exponent * (e.nominal_supply_v - vt) / (e.supply_v - vt)


def low_temp_factor(cfg: MacroConfig) -> float:
    """Relative change of the MTJ's P resistance with temperature (linear coefficient)."""
    e = cfg.env
    return 1.0 + cfg.device.temp_coeff_low_per_k * (e.temperature_k - e.nominal_temperature_k)


def tmr_temp_factor(cfg: MacroConfig) -> float:
    """Relative change of the AP-P difference with temperature (linear coefficient)."""
    e = cfg.env
    return 1.0 + cfg.device.temp_coeff_tmr_per_k * (e.temperature_k - e.nominal_temperature_k)


def tmr_bias_factor(cfg: MacroConfig, mtj_bias_v: float) -> float:
    """AP-P difference at ``mtj_bias_v`` relative to the measurement bias.

    The usual empirical law ``TMR(V) = TMR0 / (1 + (V/V_h)**2)``, normalised to the bias at which
    the resistance figures were measured. 1 when bias dependence is off.
    """
    d = cfg.device
    if not d.bias_dependence:
        return 1.0
    return (1.0 + (d.nominal_mtj_bias_v / d.tmr_half_bias_v) ** 2) / (
        1.0 + (mtj_bias_v / d.tmr_half_bias_v) ** 2)


def _mtj_fraction(cfg: MacroConfig) -> float:
    d = cfg.device
    return (d.r_low_mean_ohm - d.fet_ohm) / d.r_low_mean_ohm


def eval_mtj_bias_v(cfg: MacroConfig, rows: int) -> float:
    """Average bias across one MTJ while a column discharges.

    The node falls from ``V_dd`` to ``V_ref``; its mean, shared by ``rows`` cells in series, of
    which the MTJ takes the fraction ``(R_low - R_fet)/R_low``.
    """
    v_mean = 0.5 * (cfg.env.supply_v + cfg.readout.v_ref_v)
    return v_mean / rows * _mtj_fraction(cfg)


def sense_mtj_bias_v(cfg: MacroConfig) -> float:
    """Bias across the MTJ during a verify sense (one branch driven by ``read_voltage_v``)."""
    return cfg.sense.read_voltage_v * _mtj_fraction(cfg)


def branch_resistances_ohm(cfg: MacroConfig, r_low_draw_ohm, r_high_draw_ohm, mtj_bias_v: float):
    """Effective low and high branch resistances of devices at the operating point.

    Parameters
    ----------
    r_low_draw_ohm, r_high_draw_ohm : array_like
        The devices' drawn branch resistances (FET included) at nominal conditions.
    mtj_bias_v : float
        Bias across the MTJ (sets the AP-P difference).

    Returns
    -------
    (r_low_ohm, r_high_ohm) : arrays
        ``R_low = R_fet*s_fet + (R_low_draw - R_fet)*f_T,low`` and
        ``R_high = R_low + (R_high_draw - R_low_draw) * f_T,tmr * f_bias``.
    """
    d = cfg.device
    r_lo = np.asarray(r_low_draw_ohm, dtype=np.float64)
    r_hi = np.asarray(r_high_draw_ohm, dtype=np.float64)
    s_fet = fet_scale(cfg)
    f_low = low_temp_factor(cfg)
    f_dr = tmr_temp_factor(cfg) * tmr_bias_factor(cfg, mtj_bias_v)
    if s_fet == 1.0 and f_low == 1.0:
        low = r_lo.copy()  # exact at nominal (no round-off through the FET split)
    else:
        low = d.fet_ohm * s_fet + (r_lo - d.fet_ohm) * f_low
    high = low + (r_hi - r_lo) * f_dr if f_dr != 1.0 else low + (r_hi - r_lo)
    return low, high


# ---- readout timing ---------------------------------------------------------------------------

def slope_ps_per_ohm(cfg: MacroConfig) -> float:
    """``k = C_node ln(V_dd/V_ref)`` relative to nominal: the node starts higher at a higher
    supply while the bandgap reference stays put, so the discharge takes longer."""
    r, e = cfg.readout, cfg.env
    if e.supply_v <= r.v_ref_v:
        raise ValueError(f"supply {e.supply_v} V is not above the comparator reference {r.v_ref_v} V")
    if e.supply_v == e.nominal_supply_v:
        return r.slope_ps_per_ohm
    return r.slope_ps_per_ohm * math.log(e.supply_v / r.v_ref_v) / math.log(
        e.nominal_supply_v / r.v_ref_v)


def fixed_delay_ps(cfg: MacroConfig) -> float:
    """Comparator/start latency: alpha-power gate delay ``V/(V-Vt)**a`` and mobility ``T**1.5``."""
    r, e = cfg.readout, cfg.env
    if e.supply_v == e.nominal_supply_v and e.temperature_k == e.nominal_temperature_k:
        return r.fixed_delay_ps

    def gate(v):
        return v / (v - r.comparator_vth_v) ** r.comparator_alpha

    return (r.fixed_delay_ps * gate(e.supply_v) / gate(e.nominal_supply_v)
            * (e.temperature_k / e.nominal_temperature_k) ** 1.5)


def fire_time_float_ps(cfg: MacroConfig, rows: int, r_col_ohm):
    """Noise-free fire time ``t_fix + k (R_col - rows R_rep)`` (float ps), no offset."""
    return fixed_delay_ps(cfg) + slope_ps_per_ohm(cfg) * (
        np.asarray(r_col_ohm, dtype=np.float64) - rows * cfg.readout.replica_cell_ohm)


def nominal_fire_time_ps(cfg: MacroConfig, rows: int, mismatches):
    """Noise-free fire time of a column of mean devices with ``mismatches`` high cells."""
    m = np.asarray(mismatches, dtype=np.float64)
    lo, hi = branch_resistances_ohm(cfg, cfg.device.r_low_mean_ohm, cfg.device.r_high_mean_ohm,
                                    eval_mtj_bias_v(cfg, rows))
    r_col = (rows - m) * lo + m * hi + rows * cfg.readout.wire_ohm_per_cell
    t = fire_time_float_ps(cfg, rows, r_col)
    return float(t) if t.ndim == 0 else t


def column_time_sigma_ps(cfg: MacroConfig, rows: int, mismatches):
    """Sigma of a column's fire time over devices, columns and evaluations.

    Device spread of ``rows - m`` low and ``m`` high cells, read noise, comparator offset and
    jitter, added in quadrature (they are independent).
    """
    d, r = cfg.device, cfg.readout
    m = np.asarray(mismatches, dtype=np.float64)
    k = slope_ps_per_ohm(cfg)
    var_r = (rows - m) * d.r_low_sigma_ohm ** 2 + m * d.r_high_sigma_ohm ** 2
    var_r += d.read_noise_rel ** 2 * ((rows - m) * d.r_low_mean_ohm ** 2 + m * d.r_high_mean_ohm ** 2)
    s = np.sqrt(k * k * var_r + r.comparator_offset_sigma_ps ** 2 + r.jitter_sigma_ps ** 2)
    return float(s) if s.ndim == 0 else s


# ---- write --------------------------------------------------------------------------------

def switching_probability(cfg: MacroConfig, from_low, pulse_width_ps, write_voltage_v=None,
                          ic0_scale=1.0):
    """Probability that one pulse switches a device that is not yet in the target state.

    Thermally activated STT switching (Néel-Brown with a spin-torque-lowered barrier):

        I   = V_write / (R_state,mean + R_series)
        tau = tau0 * exp(Delta(T) * (1 - I / Ic0))        Delta(T) = Delta * T0 / T
        P   = 1 - exp(-t_p / tau)

    The current uses the state's *mean* resistance: device-to-device resistance spread comes
    mostly from junction area, and both the drive current (at fixed voltage) and ``Ic0`` scale
    with area, so the overdrive ``I/Ic0`` does not depend on it to first order. Remaining
    ``Ic0`` spread enters as ``ic0_scale``.

    Parameters
    ----------
    from_low : array_like of bool
        True for P -> AP (the device is low and is written high), False for AP -> P.
    pulse_width_ps : float
        Pulse width.
    write_voltage_v : float, optional
        Driver voltage; default the configured ``write.write_voltage_v``.
    ic0_scale : array_like of float
        Per-device multiplier of the critical current.
    """
    w, d, e = cfg.write, cfg.device, cfg.env
    if pulse_width_ps is None or not np.all(np.isfinite(pulse_width_ps)) or np.any(
            np.asarray(pulse_width_ps) < 0):
        raise ValueError(f"pulse_width_ps must be a finite non-negative number, not {pulse_width_ps!r}")
    v = w.write_voltage_v if write_voltage_v is None else float(write_voltage_v)
    from_low = np.asarray(from_low, dtype=bool)
    r_state = np.where(from_low, d.r_low_mean_ohm, d.r_high_mean_ohm)
    ic0 = np.where(from_low, w.ic0_p_to_ap_a, w.ic0_ap_to_p_a) * ic0_scale
    current_a = v / (r_state + w.series_ohm)
    delta = w.thermal_stability * e.nominal_temperature_k / e.temperature_k
    exponent = np.clip(delta * (1.0 - current_a / ic0), -700.0, 700.0)
    tau_ps = w.attempt_time_ps * np.exp(exponent)
    return -np.expm1(-np.asarray(pulse_width_ps, dtype=np.float64) / tau_ps)


def write_error_rate(cfg: MacroConfig, pulse_width_ps, write_voltage_v=None, direction: str = "mean"):
    """Probability that one pulse leaves a bit unswitched (``1 - P_switch``).

    ``direction`` is ``"p_to_ap"``, ``"ap_to_p"`` or ``"mean"`` (average of the two, the rate
    for random data).
    """
    if direction not in ("p_to_ap", "ap_to_p", "mean"):
        raise ValueError(f"direction must be 'p_to_ap', 'ap_to_p' or 'mean', not {direction!r}")
    wer_p = 1.0 - switching_probability(cfg, True, pulse_width_ps, write_voltage_v)
    wer_ap = 1.0 - switching_probability(cfg, False, pulse_width_ps, write_voltage_v)
    if direction == "p_to_ap":
        return wer_p
    if direction == "ap_to_p":
        return wer_ap
    return 0.5 * (wer_p + wer_ap)


def retention_flip_probability(cfg: MacroConfig, seconds):
    """Probability that an idle MTJ flips by itself within ``seconds`` (thermal, zero current):
    ``1 - exp(-t / (tau0 exp(Delta(T))))``. With Delta = 45 at 300 K, tau is about 1,100 years:
    ~1 % of devices flip in ten years, nothing within any simulation, so :class:`MramArray` does
    not apply it; it is here for retention studies (the rate grows steeply with temperature)."""
    w, e = cfg.write, cfg.env
    delta = w.thermal_stability * e.nominal_temperature_k / e.temperature_k
    t_ps = np.asarray(seconds, dtype=np.float64) * 1e12
    return -np.expm1(-t_ps / (w.attempt_time_ps * np.exp(delta)))


def sense_low_probability(cfg: MacroConfig, r_branch_ohm):
    """Probability that a sense of a branch of resistance ``r_branch_ohm`` reads low:
    ``P(R (1 + noise_rel z) < R_ref) = Phi((R_ref - R) / (noise_rel R))``."""
    r = np.asarray(r_branch_ohm, dtype=np.float64)
    ref = cfg.sense.reference_ohm
    sigma = cfg.sense.noise_rel * r
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(sigma > 0, (ref - r) / np.where(sigma > 0, sigma, 1.0),
                     np.where(r < ref, np.inf, -np.inf))
    return _phi(z)


def sense_misread_probability(cfg: MacroConfig, r_branch_ohm, state_low):
    """Probability that a sense reports the opposite of the device's state ``state_low``
    (the rate its margin to the reference implies; a device whose resistance lies on the wrong
    side of the reference is misread more often than not)."""
    p_low = sense_low_probability(cfg, r_branch_ohm)
    return np.where(np.asarray(state_low, dtype=bool), 1.0 - p_low, p_low)
