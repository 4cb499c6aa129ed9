"""Typed configuration of the analog model and of the macro's timing as a whole.

A :class:`MacroConfig` is a frozen tree of dataclasses. Every analog effect of the model (device
spread, read noise, bias and temperature dependence, faults, comparator offset and jitter, write
switching statistics, sense noise) is a field here, with its unit in its name. Three presets are
provided (:data:`PRESETS`):

``ideal``
    No spread, no noise, no faults, a fine TDC (one controller cycle of 250 ps per mismatch) and
    fire times that are exact integers: ``fire_ps(m) = F0 + m * 250`` with ``F0`` in the middle of
    a clock period, so the TDC code equals the mismatch count exactly for every ``rows``.
``paper``
    The chip figures of Jung et al. (Nature 601, 211, 2022) as reported: branch resistances
    13 kOhm (sigma 1.6 kOhm) / 26 kOhm (sigma 2.0 kOhm), 13 ns / 29 ns all-match / all-mismatch
    delay at 64 rows, a coarse 4-bit TDC clocked at 1 GHz.
``fine``
    The ``paper`` analog model read with a fine TDC: a 250 ps clock, one mismatch per code.

Overrides use dotted names, ``preset("paper", **{"device.r_low_sigma_ohm": 0.0})`` or
``cfg.replace(**{"faults.open_rate": 1e-3})``. The whole tree round-trips through JSON
(:meth:`MacroConfig.to_json` / :meth:`MacroConfig.from_json`); unknown keys raise ``ValueError``
naming the key, and out-of-range values raise ``ValueError`` naming the field.

The equations behind the fields are in ``docs/analog_model.md``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = [
    "DeviceConfig", "FaultConfig", "ReadoutConfig", "WriteConfig", "SenseConfig",
    "EnvironmentConfig", "ControllerConfig", "MacroConfig", "PRESETS", "preset",
]

#: Names of the built-in presets, in the order they are documented.
PRESETS = ("ideal", "paper", "fine")

# ---- figures quoted from the publication (see MACRO.md section 1) ----
_PAPER_R_LOW_OHM = 13_000.0
_PAPER_R_LOW_SIGMA_OHM = 1_600.0
_PAPER_R_HIGH_OHM = 26_000.0
_PAPER_R_HIGH_SIGMA_OHM = 2_000.0
_PAPER_ROWS = 64
_PAPER_T_ALL_MATCH_PS = 13_000.0
_PAPER_T_ALL_MISMATCH_PS = 29_000.0
#: Mean MTJ bias while a 64-row column discharges from 1.0 V to the 0.5 V reference: the mean node
#: voltage 0.75 V over 64 cells, of which the MTJ takes (13 - 2)/13. The published resistances are
#: taken as measured at this bias, so the TMR bias law is exactly 1 at the paper's conditions.
_PAPER_MTJ_BIAS_V = 0.5 * (1.0 + 0.5) / 64 * (13_000.0 - 2_000.0) / 13_000.0

# ---- our calibration of the paper figures (docs/analog_model.md, "Readout" and "Write") ----
#: Fixed comparator propagation plus start latency (a few gate delays in 28 nm).
_DEFAULT_FIXED_DELAY_PS = 500.0
#: All-match fire time at 64 rows we calibrate to: the paper's 13 ns, moved by 125 ps so that it
#: sits mid-bin of the ``fine`` preset's 250 ps clock (the fine TDC then rounds to the nearest
#: mismatch count instead of truncating).
_DEFAULT_F0_PS = _PAPER_T_ALL_MATCH_PS + 125.0
#: k = (29 - 13) ns / (64 * (26 - 13) kOhm) = 0.01923 ps/Ohm (C_node = k/ln2 = 27.7 fF).
_DEFAULT_SLOPE_PS_PER_OHM = (_PAPER_T_ALL_MISMATCH_PS - _PAPER_T_ALL_MATCH_PS) / (
    _PAPER_ROWS * (_PAPER_R_HIGH_OHM - _PAPER_R_LOW_OHM))
_DEFAULT_WIRE_OHM_PER_CELL = 10.0
#: R_rep from F0 = t_fix + k * 64 * (R_low + R_wire - R_rep)  (about 2.65 kOhm).
_DEFAULT_REPLICA_CELL_OHM = (_PAPER_R_LOW_OHM + _DEFAULT_WIRE_OHM_PER_CELL
                             - (_DEFAULT_F0_PS - _DEFAULT_FIXED_DELAY_PS)
                             / (_DEFAULT_SLOPE_PS_PER_OHM * _PAPER_ROWS))
_DEFAULT_WRITE_V = 1.5
_DEFAULT_PULSE_PS = 20_000
_DEFAULT_TAU0_PS = 1_000.0
_DEFAULT_DELTA = 45.0
_DEFAULT_SERIES_OHM = 2_000.0
#: Write error rates per pulse at the nominal pulse width, per direction. P->AP is the harder
#: direction in STT-MRAM (lower spin-torque efficiency); the mean over random data is 1e-3.
_TARGET_WER_P_TO_AP = 1.6e-3
_TARGET_WER_AP_TO_P = 0.4e-3


def _ic0_for_wer(i_a: float, pulse_ps: float, tau0_ps: float, delta: float, wer: float) -> float:
    """Critical current giving write error rate ``wer`` at current ``i_a`` and pulse ``pulse_ps``.

    Solves ``exp(-t_p/tau) = wer`` with ``tau = tau0 exp(Delta (1 - I/Ic0))``.
    """
    tau_ps = pulse_ps / math.log(1.0 / wer)
    barrier = math.log(tau_ps / tau0_ps)  # Delta * (1 - I/Ic0)
    return i_a / (1.0 - barrier / delta)


#: P->AP starts in P: I = V / (R_low + R_series) = 100 uA; Ic0 about 103 uA.
_DEFAULT_IC0_P_TO_AP_A = _ic0_for_wer(_DEFAULT_WRITE_V / (_PAPER_R_LOW_OHM + _DEFAULT_SERIES_OHM),
                                      _DEFAULT_PULSE_PS, _DEFAULT_TAU0_PS, _DEFAULT_DELTA,
                                      _TARGET_WER_P_TO_AP)
#: AP->P starts in AP: I = V / (R_high + R_series) = 54 uA; Ic0 about 55 uA.
_DEFAULT_IC0_AP_TO_P_A = _ic0_for_wer(_DEFAULT_WRITE_V / (_PAPER_R_HIGH_OHM + _DEFAULT_SERIES_OHM),
                                      _DEFAULT_PULSE_PS, _DEFAULT_TAU0_PS, _DEFAULT_DELTA,
                                      _TARGET_WER_AP_TO_P)


# --------------------------------------------------------------------------------------------
# validation helpers: every error names the offending field
# --------------------------------------------------------------------------------------------

def _num(obj, name: str, *, lo: float | None = None, hi: float | None = None,
         lo_open: bool = False, integer: bool = False) -> None:
    value = getattr(obj, name)
    where = f"{type(obj).__name__}.{name}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{where} must be a number, not {value!r}")
    if integer and not float(value).is_integer():
        raise ValueError(f"{where} must be an integer, not {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{where} must be finite, not {value!r}")
    if lo is not None and (value < lo or (lo_open and value == lo)):
        raise ValueError(f"{where} must be {'>' if lo_open else '>='} {lo}, not {value!r}")
    if hi is not None and value > hi:
        raise ValueError(f"{where} must be <= {hi}, not {value!r}")


def _flag(obj, name: str) -> None:
    if not isinstance(getattr(obj, name), bool):
        raise TypeError(f"{type(obj).__name__}.{name} must be a bool, not {getattr(obj, name)!r}")


# --------------------------------------------------------------------------------------------
# sections
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DeviceConfig:
    """One branch of a cell: an MTJ in series with its access FET.

    Resistances are branch resistances, FET included, as the publication reports them, measured
    at the nominal read bias, supply and temperature of :class:`EnvironmentConfig`.

    Parameters
    ----------
    r_low_mean_ohm, r_low_sigma_ohm : float
        Mean and device-to-device sigma of the low (parallel, P) branch resistance.
    r_high_mean_ohm, r_high_sigma_ohm : float
        Mean and sigma of the high (antiparallel, AP) branch resistance.
    fet_ohm : float
        Part of the branch resistance that is the access FET (on-resistance at nominal supply).
        Only the rest (the MTJ) shows TMR; the FET part follows supply and temperature.
    read_noise_rel : float
        Read-to-read noise of a branch resistance during an evaluation, relative sigma (1/f and
        thermal noise of the MTJ seen within the discharge time).
    bias_dependence : bool
        Whether the AP-P resistance difference falls with the MTJ bias voltage.
    tmr_half_bias_v : float
        Bias at which the TMR has fallen to half its zero-bias value (MgO junctions: 0.3-0.6 V).
    nominal_mtj_bias_v : float
        MTJ bias at which the resistance figures were measured.
    temp_coeff_low_per_k : float
        Relative temperature coefficient of the MTJ's P resistance (weak, tunnelling).
    temp_coeff_tmr_per_k : float
        Relative temperature coefficient of the AP-P difference (TMR falls with temperature).
    fet_temp_exponent : float
        FET on-resistance scales as (T/T0)**exponent (phonon-limited mobility, about 1.5).
    shorted_ohm : float
        Residual resistance of a shorted MTJ (barrier breakdown), added to the FET.
    """

    r_low_mean_ohm: float = _PAPER_R_LOW_OHM
    r_low_sigma_ohm: float = _PAPER_R_LOW_SIGMA_OHM
    r_high_mean_ohm: float = _PAPER_R_HIGH_OHM
    r_high_sigma_ohm: float = _PAPER_R_HIGH_SIGMA_OHM
    fet_ohm: float = 2_000.0
    read_noise_rel: float = 0.01
    bias_dependence: bool = True
    tmr_half_bias_v: float = 0.5
    nominal_mtj_bias_v: float = _PAPER_MTJ_BIAS_V
    temp_coeff_low_per_k: float = -2.0e-4
    temp_coeff_tmr_per_k: float = -2.0e-3
    fet_temp_exponent: float = 1.5
    shorted_ohm: float = 200.0

    def validate(self) -> None:
        """Raise ``ValueError``/``TypeError`` naming the first bad field."""
        _num(self, "fet_ohm", lo=0.0)
        _num(self, "r_low_mean_ohm", lo=self.fet_ohm, lo_open=True)
        _num(self, "r_low_sigma_ohm", lo=0.0)
        _num(self, "r_high_mean_ohm", lo=self.r_low_mean_ohm, lo_open=True)
        _num(self, "r_high_sigma_ohm", lo=0.0)
        _num(self, "read_noise_rel", lo=0.0, hi=0.5)
        _flag(self, "bias_dependence")
        _num(self, "tmr_half_bias_v", lo=0.0, lo_open=True)
        _num(self, "nominal_mtj_bias_v", lo=0.0)
        _num(self, "temp_coeff_low_per_k", lo=-0.01, hi=0.01)
        _num(self, "temp_coeff_tmr_per_k", lo=-0.01, hi=0.01)
        _num(self, "fet_temp_exponent", lo=0.0, hi=4.0)
        _num(self, "shorted_ohm", lo=0.0)


@dataclass(frozen=True)
class FaultConfig:
    """Fault rates, drawn per device or per column from the seed (see also ``FaultMap``).

    Parameters
    ----------
    stuck_low_rate, stuck_high_rate : float
        Fraction of MTJs stuck in P (low) or AP (high); they never switch.
    shorted_rate : float
        Fraction of MTJs with a broken-down barrier: the branch is the FET plus ``shorted_ohm``.
    open_rate : float
        Fraction of open MTJs: a column whose conducting path meets one never fires.
    column_open_rate : float
        Fraction of columns with an open series chain (wire or via): never fire.
    comparator_stuck_high_rate, comparator_stuck_low_rate : float
        Fraction of comparators stuck high (``FIRE_ALREADY``) or low (``FIRE_NEVER``).
    """

    stuck_low_rate: float = 0.0
    stuck_high_rate: float = 0.0
    shorted_rate: float = 0.0
    open_rate: float = 0.0
    column_open_rate: float = 0.0
    comparator_stuck_high_rate: float = 0.0
    comparator_stuck_low_rate: float = 0.0

    def validate(self) -> None:
        """Raise ``ValueError``/``TypeError`` naming the first bad field."""
        for f in fields(self):
            _num(self, f.name, lo=0.0, hi=1.0)
        if self.stuck_low_rate + self.stuck_high_rate + self.shorted_rate + self.open_rate > 1.0:
            raise ValueError("FaultConfig: device fault rates sum to more than 1")
        if (self.column_open_rate + self.comparator_stuck_high_rate
                + self.comparator_stuck_low_rate > 1.0):
            raise ValueError("FaultConfig: column fault rates sum to more than 1")


@dataclass(frozen=True)
class ReadoutConfig:
    """Time-domain readout: column discharge, replica-referenced start, comparator.

    The fire time of column j (ps, measured from the evaluate edge) is

        t_j = t_fix + k * (R_col_j - rows * R_rep) + offset_j + noise

    with ``k = C_node * ln(V_pre / V_ref)`` (the RC discharge slope) and ``rows * R_rep`` a
    replica column that starts the interval measurement; see ``docs/analog_model.md``.

    Parameters
    ----------
    fixed_delay_ps : float
        ``t_fix``: comparator propagation and the replica-start latency at nominal conditions.
    slope_ps_per_ohm : float
        ``k`` at nominal supply: ps of delay per ohm of column resistance.
    replica_cell_ohm : float
        ``R_rep``: resistance of one replica cell (poly resistor plus FET), must stay below the
        low branch resistance so the fire time stays positive for every ``rows``.
    wire_ohm_per_cell : float
        Column wire resistance per cell pitch.
    v_ref_v : float
        Comparator reference (bandgap-derived, does not track the supply).
    comparator_offset_sigma_ps : float
        Static comparator offset per column, expressed as time.
    jitter_sigma_ps : float
        Per-evaluation comparator and clock jitter.
    comparator_vth_v, comparator_alpha : float
        Alpha-power-law parameters of the comparator's gate delay versus supply.
    comparator_energy_j : float
        Energy of one comparator decision at nominal supply (scales with V**2).
    row_line_cap_per_cell_f : float
        Gate plus wire capacitance each cell adds to a row's input line.
    """

    fixed_delay_ps: float = _DEFAULT_FIXED_DELAY_PS
    slope_ps_per_ohm: float = _DEFAULT_SLOPE_PS_PER_OHM
    replica_cell_ohm: float = _DEFAULT_REPLICA_CELL_OHM
    wire_ohm_per_cell: float = _DEFAULT_WIRE_OHM_PER_CELL
    v_ref_v: float = 0.5
    comparator_offset_sigma_ps: float = 100.0
    jitter_sigma_ps: float = 30.0
    comparator_vth_v: float = 0.35
    comparator_alpha: float = 1.3
    comparator_energy_j: float = 10e-15
    row_line_cap_per_cell_f: float = 0.3e-15

    def validate(self) -> None:
        """Raise ``ValueError``/``TypeError`` naming the first bad field."""
        _num(self, "fixed_delay_ps", lo=0.0)
        _num(self, "slope_ps_per_ohm", lo=0.0, lo_open=True)
        _num(self, "replica_cell_ohm", lo=0.0)
        _num(self, "wire_ohm_per_cell", lo=0.0)
        _num(self, "v_ref_v", lo=0.0, lo_open=True)
        _num(self, "comparator_offset_sigma_ps", lo=0.0)
        _num(self, "jitter_sigma_ps", lo=0.0)
        _num(self, "comparator_vth_v", lo=0.0)
        _num(self, "comparator_alpha", lo=1.0, hi=2.0)
        _num(self, "comparator_energy_j", lo=0.0)
        _num(self, "row_line_cap_per_cell_f", lo=0.0)

    @property
    def node_capacitance_f(self) -> float:
        """Column node capacitance implied by the slope: ``k / ln(V_pre/V_ref)`` at 1.0 V."""
        return self.slope_ps_per_ohm * 1e-12 / math.log(1.0 / self.v_ref_v)


@dataclass(frozen=True)
class WriteConfig:
    """Spin-transfer-torque switching in the thermally activated regime.

    Switching rate ``1/tau = (1/tau0) * exp(-Delta * (1 - I/Ic0))``, switching probability
    in a pulse of width ``t_p``: ``1 - exp(-t_p/tau)``; ``I = V_write / (R_state + R_series)``.

    Parameters
    ----------
    write_voltage_v : float
        Write driver voltage (publication: about 1.5 V).
    nominal_pulse_width_ps : int
        The preset's write pulse width (``WRITE_PULSE`` cycles times the clock period).
    attempt_time_ps : float
        ``tau0``, inverse attempt frequency (about 1 ns).
    thermal_stability : float
        ``Delta = E_b / kT`` at nominal temperature (scales as T0/T).
    ic0_p_to_ap_a, ic0_ap_to_p_a : float
        Critical currents per direction; P->AP needs more (spin-torque asymmetry).
    series_ohm : float
        Write driver plus data-line resistance in series with the branch.
    ic0_sigma_rel : float
        Device-to-device relative sigma of the critical currents.
    line_capacitance_f : float
        Data-line plus source-line capacitance charged per enabled column and pulse.
    """

    write_voltage_v: float = _DEFAULT_WRITE_V
    nominal_pulse_width_ps: int = _DEFAULT_PULSE_PS
    attempt_time_ps: float = _DEFAULT_TAU0_PS
    thermal_stability: float = _DEFAULT_DELTA
    ic0_p_to_ap_a: float = _DEFAULT_IC0_P_TO_AP_A
    ic0_ap_to_p_a: float = _DEFAULT_IC0_AP_TO_P_A
    series_ohm: float = _DEFAULT_SERIES_OHM
    ic0_sigma_rel: float = 0.0
    line_capacitance_f: float = 50e-15

    def validate(self) -> None:
        """Raise ``ValueError``/``TypeError`` naming the first bad field."""
        _num(self, "write_voltage_v", lo=0.0, lo_open=True)
        _num(self, "nominal_pulse_width_ps", lo=1, integer=True)
        _num(self, "attempt_time_ps", lo=0.0, lo_open=True)
        _num(self, "thermal_stability", lo=0.0, lo_open=True)
        _num(self, "ic0_p_to_ap_a", lo=0.0, lo_open=True)
        _num(self, "ic0_ap_to_p_a", lo=0.0, lo_open=True)
        _num(self, "series_ohm", lo=0.0)
        _num(self, "ic0_sigma_rel", lo=0.0, hi=0.5)
        _num(self, "line_capacitance_f", lo=0.0)


@dataclass(frozen=True)
class SenseConfig:
    """Verify/read sense amplifier: one branch against a reference resistance.

    Parameters
    ----------
    reference_ohm : float
        Reference resistance; a branch below it reads low (P). Default: the equal-sigma point
        between the low and high distributions.
    noise_rel : float
        Per-sense noise, relative sigma of the branch resistance (sense-amplifier input noise
        referred to the resistance).
    read_voltage_v : float
        Voltage across the branch during a sense (sets the MTJ bias).
    """

    # Equal-sigma point between the two distributions, (mu_L sigma_H + mu_H sigma_L)/(sigma_L +
    # sigma_H) = 18.8 kOhm: about 3.5 sigma of device spread on either side.
    reference_ohm: float = 18_800.0
    noise_rel: float = 0.03
    read_voltage_v: float = 0.1

    def validate(self) -> None:
        """Raise ``ValueError``/``TypeError`` naming the first bad field."""
        _num(self, "reference_ohm", lo=0.0, lo_open=True)
        _num(self, "noise_rel", lo=0.0, hi=1.0)
        _num(self, "read_voltage_v", lo=0.0, lo_open=True)


@dataclass(frozen=True)
class EnvironmentConfig:
    """Operating point. Every dependence is normalised so that it is exactly 1 at nominal.

    Parameters
    ----------
    supply_v, nominal_supply_v : float
        TDC/readout supply (publication: 1.0 V) and the supply the figures were measured at.
    temperature_k, nominal_temperature_k : float
        Junction temperature and the temperature the figures were measured at.
    """

    supply_v: float = 1.0
    nominal_supply_v: float = 1.0
    temperature_k: float = 300.0
    nominal_temperature_k: float = 300.0

    def validate(self) -> None:
        """Raise ``ValueError``/``TypeError`` naming the first bad field."""
        _num(self, "supply_v", lo=0.5, hi=2.0)
        _num(self, "nominal_supply_v", lo=0.5, hi=2.0)
        _num(self, "temperature_k", lo=200.0, hi=450.0)
        _num(self, "nominal_temperature_k", lo=200.0, hi=450.0)


@dataclass(frozen=True)
class ControllerConfig:
    """How the preset programs the controller's timing registers (see ``register_settings``).

    Parameters
    ----------
    tdc_step_cycles : int
        ``TDC_STEP``: controller cycles per code.
    tdc_code_max : int
        ``TDC_CODE_MAX``; 0 means "rows" (one code per mismatch), clipped to the counter width.
    window : str
        ``"first"``: code 0 at the noise-free all-match fire time (``W = floor(F0/T) + S``);
        ``"centre"``: the code range centred on the mid-range fire time.
    timeout_margin_sigma : float
        Timeout = all-mismatch fire time plus this many sigma of the column time spread.
    precharge_ps : int
        Precharge recovery time (``PRECHARGE`` = ceil of it in cycles).
    read_pulse_cycles : int
        ``READ_PULSE`` cycles; must exceed the read latency.
    write_retries : int
        ``WRITE_RETRIES``.
    """

    tdc_step_cycles: int = 1
    tdc_code_max: int = 0
    window: str = "first"
    timeout_margin_sigma: float = 6.0
    precharge_ps: int = 2_000
    read_pulse_cycles: int = 8
    write_retries: int = 3

    def validate(self) -> None:
        """Raise ``ValueError``/``TypeError`` naming the first bad field."""
        _num(self, "tdc_step_cycles", lo=1, hi=255, integer=True)
        _num(self, "tdc_code_max", lo=0, hi=65535, integer=True)
        if self.window not in ("first", "centre"):
            raise ValueError(f"ControllerConfig.window must be 'first' or 'centre', not {self.window!r}")
        _num(self, "timeout_margin_sigma", lo=0.0, hi=100.0)
        _num(self, "precharge_ps", lo=0, integer=True)
        _num(self, "read_pulse_cycles", lo=1, hi=65535, integer=True)
        _num(self, "write_retries", lo=0, hi=15, integer=True)


_SECTIONS = {
    "device": DeviceConfig, "faults": FaultConfig, "readout": ReadoutConfig,
    "write": WriteConfig, "sense": SenseConfig, "env": EnvironmentConfig,
    "controller": ControllerConfig,
}
_INT_FIELDS = {("write", "nominal_pulse_width_ps"), ("controller", "tdc_step_cycles"),
               ("controller", "tdc_code_max"), ("controller", "precharge_ps"),
               ("controller", "read_pulse_cycles"), ("controller", "write_retries")}


@dataclass(frozen=True)
class MacroConfig:
    """The analog model and the macro's timing, as one frozen, JSON-serialisable tree.

    Parameters
    ----------
    name : str
        Preset name, or a user label.
    clock_period_ps : int
        Controller clock period ``T`` (ideal 250, paper 1000, fine 250).
    read_latency_ps : int
        Sense latency: ``rd_data`` changes this long after ``rd_en`` rises.
    device, faults, readout, write, sense, env, controller
        The sections; see their classes.
    """

    name: str = "paper"
    clock_period_ps: int = 1_000
    read_latency_ps: int = 2_000
    device: DeviceConfig = field(default_factory=DeviceConfig)
    faults: FaultConfig = field(default_factory=FaultConfig)
    readout: ReadoutConfig = field(default_factory=ReadoutConfig)
    write: WriteConfig = field(default_factory=WriteConfig)
    sense: SenseConfig = field(default_factory=SenseConfig)
    env: EnvironmentConfig = field(default_factory=EnvironmentConfig)
    controller: ControllerConfig = field(default_factory=ControllerConfig)

    def __post_init__(self):
        self.validate()

    # ---- checks ----

    def validate(self) -> None:
        """Check every field; raise ``ValueError``/``TypeError`` naming the bad one."""
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"MacroConfig.name must be a non-empty string, not {self.name!r}")
        _num(self, "clock_period_ps", lo=1, hi=1_000_000, integer=True)
        _num(self, "read_latency_ps", lo=0, integer=True)
        for sec, cls in _SECTIONS.items():
            value = getattr(self, sec)
            if not isinstance(value, cls):
                raise TypeError(f"MacroConfig.{sec} must be a {cls.__name__}, not {value!r}")
            value.validate()
        # t(all match) = t_fix + k * rows * (R_low + R_wire - R_rep) must stay positive for every
        # rows, hence R_rep <= R_low (+ wire), and strictly below when there is no fixed delay.
        headroom = self.device.r_low_mean_ohm + self.readout.wire_ohm_per_cell - self.readout.replica_cell_ohm
        if headroom < 0 or (headroom == 0 and self.readout.fixed_delay_ps <= 0):
            raise ValueError("ReadoutConfig.replica_cell_ohm must not exceed device.r_low_mean_ohm "
                             "+ wire_ohm_per_cell (else an all-match column fires before evaluate)")
        if self.read_latency_ps >= self.controller.read_pulse_cycles * self.clock_period_ps:
            raise ValueError("MacroConfig.read_latency_ps must be shorter than "
                             "controller.read_pulse_cycles * clock_period_ps")
        if self.write.nominal_pulse_width_ps % self.clock_period_ps:
            raise ValueError("WriteConfig.nominal_pulse_width_ps must be a whole number of "
                             "clock periods (clock_period_ps)")
        if self.write.nominal_pulse_width_ps // self.clock_period_ps > 65535:
            raise ValueError("WriteConfig.nominal_pulse_width_ps is more than 65535 clock periods")

    # ---- dict / JSON ----

    def to_dict(self) -> dict:
        """Nested plain dict (JSON types only)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "MacroConfig":
        """Inverse of :meth:`to_dict`. Missing keys take the class defaults.

        Raises
        ------
        ValueError
            On an unknown key (the message names it) or a bad value.
        """
        if not isinstance(d, dict):
            raise TypeError(f"MacroConfig.from_dict needs a dict, not {type(d).__name__}")
        top = {f.name for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in d.items():
            if key not in top:
                raise ValueError(f"unknown config key {key!r}")
            if key in _SECTIONS:
                sec_cls = _SECTIONS[key]
                if not isinstance(value, dict):
                    raise TypeError(f"config section {key!r} must be a dict")
                names = {f.name for f in fields(sec_cls)}
                for k in value:
                    if k not in names:
                        raise ValueError(f"unknown config key {key + '.' + k!r}")
                kwargs[key] = sec_cls(**{k: _coerce(key, k, v) for k, v in value.items()})
            else:
                kwargs[key] = _coerce(None, key, value)
        return cls(**kwargs)

    def to_json(self, indent: int | None = 2) -> str:
        """JSON text of :meth:`to_dict`."""
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False)

    @classmethod
    def from_json(cls, text: str) -> "MacroConfig":
        """Inverse of :meth:`to_json`."""
        return cls.from_dict(json.loads(text))

    # ---- overrides ----

    def replace(self, **overrides) -> "MacroConfig":
        """A copy with dotted-name overrides, e.g. ``replace(**{"device.r_low_sigma_ohm": 0})``.

        Top-level fields take plain names (``clock_period_ps=500``). Unknown names raise
        ``ValueError`` naming them.
        """
        d = self.to_dict()
        for key, value in overrides.items():
            parts = key.split(".")
            if len(parts) == 1:
                if parts[0] not in d or parts[0] in _SECTIONS:
                    raise ValueError(f"unknown config key {key!r}")
                d[parts[0]] = value
            elif len(parts) == 2 and parts[0] in _SECTIONS:
                if parts[1] not in d[parts[0]]:
                    raise ValueError(f"unknown config key {key!r}")
                d[parts[0]][parts[1]] = value
            else:
                raise ValueError(f"unknown config key {key!r}")
        return MacroConfig.from_dict(d)

    # ---- derived timing ----

    def nominal_fire_time_ps(self, rows: int, mismatches) -> float:
        """Noise-free fire time (float ps) of a column of nominal devices, no faults.

        Uses the mean resistances at the configured operating point; the exact per-device
        computation lives in :class:`analog_models.array.MramArray`.
        """
        from . import physics  # local import: physics imports this module
        return physics.nominal_fire_time_ps(self, rows, mismatches)

    def column_time_sigma_ps(self, rows: int, mismatches) -> float:
        """Sigma of a column's fire time (device spread, offset, noise, jitter) for ``mismatches``."""
        from . import physics
        return physics.column_time_sigma_ps(self, rows, mismatches)

    def register_settings(self, params) -> dict[str, int]:
        """Controller register values for this preset and geometry.

        Parameters
        ----------
        params : macro_spec.params.MacroParams
            Geometry (``rows``) and synchroniser depth (``sync_stages``) and counter width.

        Returns
        -------
        dict
            ``TDC_WINDOW, TDC_TIMEOUT, TDC_STEP, TDC_CODE_MAX, PRECHARGE, WRITE_PULSE,
            READ_PULSE, WRITE_RETRIES`` (register values, all ints).

        Notes
        -----
        With ``d = floor(fire_ps/T) + S`` and ``raw = clamp(floor((d - W)/step), 0, cmax)``
        (``docs/timing.md``): the window ``"first"`` puts code 0 at the all-match fire time
        ``F0``, ``W = floor(F0/T) + S``; ``"centre"`` puts the middle of the code range on the
        mid-range fire time. The timeout is the all-mismatch fire time plus
        ``timeout_margin_sigma`` sigma of the column spread, in cycles.
        """
        if not all(hasattr(params, a) for a in ("rows", "sync_stages", "code_max")):
            raise TypeError(f"params must be a macro_spec.params.MacroParams, not {params!r}")
        rows = int(params.rows)
        s = int(params.sync_stages)
        t = self.clock_period_ps
        c = self.controller
        step = c.tdc_step_cycles
        cmax = min(c.tdc_code_max or rows, params.code_max)
        f0 = self.nominal_fire_time_ps(rows, 0)
        fmax = self.nominal_fire_time_ps(rows, rows)
        if c.window == "first":
            window = math.floor(f0 / t) + s
        else:
            fmid = 0.5 * (f0 + fmax)
            window = math.floor(fmid / t) + s - ((cmax + 1) * step) // 2
        window = max(0, window)
        margin = c.timeout_margin_sigma * self.column_time_sigma_ps(rows, rows) + t
        timeout = math.ceil((fmax + margin) / t) + s + 1
        timeout = max(timeout, window + 1)
        regs = {
            "TDC_WINDOW": int(window),
            "TDC_TIMEOUT": int(timeout),
            "TDC_STEP": int(step),
            "TDC_CODE_MAX": int(cmax),
            "PRECHARGE": int(max(1, math.ceil(c.precharge_ps / t))),
            "WRITE_PULSE": int(self.write.nominal_pulse_width_ps // t),
            "READ_PULSE": int(c.read_pulse_cycles),
            "WRITE_RETRIES": int(c.write_retries),
        }
        for name, value in regs.items():
            if not 0 <= value <= 65535:
                raise ValueError(f"register {name} = {value} does not fit 16 bits for this "
                                 f"preset and geometry")
        return regs


def _coerce(section: str | None, key: str, value):
    """JSON gives ints for whole floats and vice versa; keep int fields int."""
    if (section, key) in _INT_FIELDS or (section is None and key in ("clock_period_ps", "read_latency_ps")):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value
    if isinstance(value, int) and not isinstance(value, bool) and section is not None:
        # float fields accept ints; bool fields do not accept ints (validated later)
        f = {f.name: f for f in fields(_SECTIONS[section])}[key]
        if f.type in ("float", float):
            return float(value)
    return value


# --------------------------------------------------------------------------------------------
# presets
# --------------------------------------------------------------------------------------------

def _build(name: str) -> MacroConfig:
    if name == "paper" or name == "fine":
        device, readout, write = DeviceConfig(), ReadoutConfig(), WriteConfig()
        if name == "paper":
            # 1 GHz controller clock, coarse 4-bit counter centred on the code range.
            return MacroConfig(
                name="paper", clock_period_ps=1_000, read_latency_ps=2_000,
                device=device, readout=readout, write=write,
                controller=ControllerConfig(tdc_step_cycles=1, tdc_code_max=15, window="centre",
                                            precharge_ps=2_000, read_pulse_cycles=8))
        # fine: the same analog model, a 250 ps clock = one mismatch (k * dR = 250 ps) per code.
        return MacroConfig(
            name="fine", clock_period_ps=250, read_latency_ps=2_000,
            device=device, readout=readout, write=write,
            controller=ControllerConfig(tdc_step_cycles=1, tdc_code_max=0, window="first",
                                        precharge_ps=2_000, read_pulse_cycles=12))
    if name == "ideal":
        # No spread, no noise, no faults, no bias/temperature effects at nominal. The replica
        # equals a perfect all-match column (R_rep = R_low, no wire), so F0 = t_fix for every
        # rows; t_fix = 12875 ps puts F0 mid-bin of the 250 ps clock and k*dR = 250 ps exactly.
        device = DeviceConfig(r_low_sigma_ohm=0.0, r_high_sigma_ohm=0.0, read_noise_rel=0.0,
                              bias_dependence=False)
        readout = ReadoutConfig(fixed_delay_ps=12_875.0, slope_ps_per_ohm=250.0 / 13_000.0,
                                replica_cell_ohm=_PAPER_R_LOW_OHM, wire_ohm_per_cell=0.0,
                                comparator_offset_sigma_ps=0.0, jitter_sigma_ps=0.0)
        sense = SenseConfig(noise_rel=0.0)
        # Ideal writes always succeed: critical currents set for a 1e-30 error rate, which
        # rounds to a switching probability of exactly 1.0 in double precision.
        i_p = _DEFAULT_WRITE_V / (_PAPER_R_LOW_OHM + _DEFAULT_SERIES_OHM)
        i_ap = _DEFAULT_WRITE_V / (_PAPER_R_HIGH_OHM + _DEFAULT_SERIES_OHM)
        write = WriteConfig(
            ic0_p_to_ap_a=_ic0_for_wer(i_p, _DEFAULT_PULSE_PS, _DEFAULT_TAU0_PS, _DEFAULT_DELTA, 1e-30),
            ic0_ap_to_p_a=_ic0_for_wer(i_ap, _DEFAULT_PULSE_PS, _DEFAULT_TAU0_PS, _DEFAULT_DELTA, 1e-30))
        return MacroConfig(
            name="ideal", clock_period_ps=250, read_latency_ps=1_000,
            device=device, readout=readout, write=write, sense=sense,
            controller=ControllerConfig(tdc_step_cycles=1, tdc_code_max=0, window="first",
                                        precharge_ps=1_000, read_pulse_cycles=8))
    raise ValueError(f"unknown preset {name!r}; valid presets: {', '.join(PRESETS)}")


def preset(name: str, **overrides) -> MacroConfig:
    """A built-in preset with optional dotted-name overrides.

    Parameters
    ----------
    name : str
        One of :data:`PRESETS`.
    **overrides
        ``"section.field": value`` or top-level ``field=value``.

    Raises
    ------
    ValueError
        Unknown preset (the message lists the valid ones) or unknown override key.
    """
    if not isinstance(name, str):
        raise TypeError(f"preset name must be a string, not {name!r}")
    cfg = _build(name)
    return cfg.replace(**overrides) if overrides else cfg
