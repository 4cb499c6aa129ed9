"""The paper's two-layer perceptron on MNIST: training, software inference, inference on the macro.

Network (see docs/applications.md): 28 x 28 digits cropped to the central 24 x 24 and
binarised to ±1 (pixel >= 128 is +1) -> dense 576 x H with ±1 weights, batch norm folded into
a threshold, sign -> dense H x 10 with ±1 weights -> class scores ``dot + bias`` (argmax).
Everything between the two matrix products is digital.

Training is numpy only (straight-through estimator, Adam, cosine learning rate):
``python -m apps.mnist_mlp train --hidden 256 --epochs 20 --seed 0``. The trained weights are
committed in ``apps/weights/`` with a JSON beside them that holds the exact command and seed.

On the macro, :func:`hardware_forward` programs each layer tile by tile (with verify) onto the
arrays through :class:`apps.bnn.MacroDense` and reads the TDC codes back; :func:`mlp_job` is the
whole job (open, configure, calibrate, infer), the same coroutine on the fast model
(:func:`run_on_model`) and on the co-simulated RTL (``firmware.cosim.run_job("apps.mnist_mlp:cosim_mlp_job", ...)``).
"""

from __future__ import annotations

import argparse

from macro_spec.cli import OneLineArgumentParser
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .bnn import MacroDense, as_pm1_int8, binarize_images, binary_activation, dense_pm1, fold_batchnorm

__all__ = ["MlpWeights", "DEFAULT_WEIGHTS", "load_weights", "save_weights", "preprocess",
           "software_forward", "hardware_forward", "mlp_job", "run_on_model", "run_on_cosim", "retune", "nominal_code_line",
           "train", "accuracy", "main"]

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
#: The committed weights of the two-layer perceptron.
DEFAULT_WEIGHTS = WEIGHTS_DIR / "mnist_mlp.npz"


# ============================================================================ weights

@dataclass
class MlpWeights:
    """A trained two-layer binary perceptron, batch norm already folded.

    Attributes
    ----------
    w1 : numpy.ndarray of int8, shape ((28 - 2 crop)**2, H)
        ±1 hidden-layer weights.
    theta1 : numpy.ndarray of float64, shape (H,)
        Hidden thresholds in dot units: ``h = sign(x @ w1 - theta1)``.
    w2 : numpy.ndarray of int8, shape (H, 10)
        ±1 output weights.
    bias2 : numpy.ndarray of float64, shape (10,)
        Class-score offsets in dot units: ``scores = h @ w2 + bias2``.
    pixel_threshold : int
        Input binarisation: pixel >= this is +1.
    crop : int
        Pixels cut from each border before binarising: 2 keeps the central 24 x 24 = 576
        pixels, exactly 9 row tiles of 64 (the cut border holds 0.2 % of the ink).
    meta : dict
        How they were made (command, seed, accuracies).
    """

    w1: np.ndarray
    theta1: np.ndarray
    w2: np.ndarray
    bias2: np.ndarray
    pixel_threshold: int = 128
    crop: int = 2
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        self.w1 = as_pm1_int8(self.w1, "w1")
        self.w2 = as_pm1_int8(self.w2, "w2")
        self.theta1 = np.asarray(self.theta1, dtype=np.float64)
        self.bias2 = np.asarray(self.bias2, dtype=np.float64)
        h = self.w1.shape[1]
        if self.w1.shape[0] != (28 - 2 * self.crop) ** 2:
            raise ValueError(f"w1 has {self.w1.shape[0]} rows but a crop of {self.crop} leaves "
                             f"{(28 - 2 * self.crop) ** 2} pixels")
        if self.w1.ndim != 2 or self.w2.shape != (h, 10) or self.theta1.shape != (h,) \
                or self.bias2.shape != (10,):
            raise ValueError(f"inconsistent MLP shapes: w1 {self.w1.shape}, theta1 {self.theta1.shape}, "
                             f"w2 {self.w2.shape}, bias2 {self.bias2.shape}")

    @property
    def hidden(self) -> int:
        """Hidden units H."""
        return self.w1.shape[1]

    def replace(self, **kw) -> "MlpWeights":
        """A copy with some fields replaced (e.g. retuned thresholds)."""
        d = dict(w1=self.w1, theta1=self.theta1, w2=self.w2, bias2=self.bias2,
                 pixel_threshold=self.pixel_threshold, crop=self.crop, meta=dict(self.meta))
        d.update(kw)
        return MlpWeights(**d)


def save_weights(weights: MlpWeights, path=DEFAULT_WEIGHTS) -> None:
    """Save as a compressed ``.npz`` (weights packed to bits) plus ``<stem>.json`` with the meta."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, w1_bits=np.packbits(weights.w1 > 0, axis=0), w1_shape=weights.w1.shape,
                        theta1=weights.theta1, w2=weights.w2, bias2=weights.bias2,
                        pixel_threshold=weights.pixel_threshold, crop=weights.crop)
    path.with_suffix(".json").write_text(json.dumps(weights.meta, indent=2, sort_keys=True) + "\n")


def load_weights(path=DEFAULT_WEIGHTS) -> MlpWeights:
    """Load weights saved by :func:`save_weights`.

    Raises
    ------
    FileNotFoundError
        One line naming the file and how to make it (``make train``).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"MLP weights {path} not found; run 'make train' to make them")
    with np.load(path) as z:
        n_in, h = (int(v) for v in z["w1_shape"])
        w1 = np.where(np.unpackbits(z["w1_bits"], axis=0, count=n_in), 1, -1).astype(np.int8)
        meta_path = path.with_suffix(".json")
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        return MlpWeights(w1[:, :h], z["theta1"], z["w2"], z["bias2"], int(z["pixel_threshold"]),
                          int(z["crop"]), meta)


def preprocess(images: np.ndarray, weights: MlpWeights) -> np.ndarray:
    """Digits (N, 28, 28) uint8 -> ±1 input vectors (N, (28 - 2 crop)**2) int8."""
    return _prep(images, weights.pixel_threshold, weights.crop)


def _prep(images, pixel_threshold: int, crop: int) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"images must have shape (N, 28, 28), not {images.shape}")
    return binarize_images(images[:, crop:28 - crop, crop:28 - crop], pixel_threshold)


# ========================================================================= inference

def software_forward(weights: MlpWeights, x) -> dict:
    """Exact ±1 arithmetic in numpy.

    Parameters
    ----------
    weights : MlpWeights
    x : array_like, shape (N, inputs), ±1

    Returns
    -------
    dict
        ``dot1`` (N, H) int32, ``h`` (N, H) int8, ``dot2`` (N, 10) int32, ``pred`` (N,) int64.
    """
    dot1 = dense_pm1(x, weights.w1)
    h = binary_activation(dot1, weights.theta1)
    dot2 = dense_pm1(h, weights.w2)
    return dict(dot1=dot1, h=h, dot2=dot2, pred=np.argmax(dot2 + weights.bias2, axis=1))


def accuracy(pred, labels) -> float:
    """Fraction of correct predictions."""
    pred, labels = np.asarray(pred), np.asarray(labels)
    return float((pred == labels).mean()) if labels.size else float("nan")


async def hardware_forward(drivers, weights: MlpWeights, x, *, verify: bool = True, progress=None,
                           output_dither: int = 1, hidden_dither: int = 1) -> dict:
    """Both layers on the macro(s) for one batch, every dot product from the TDC codes.

    Each layer is a :class:`apps.bnn.MacroDense`: its tiles are programmed (with read-back
    verify through the write model) onto the arrays, round robin, reprogramming an array for
    each tile when there are fewer arrays than tiles. The hidden activations are
    ``sign(dot - theta1)`` on the digitally summed partial dot estimates (576 inputs span 9
    row tiles, so no single column sees the whole neuron). The hidden layer runs in groups of
    one array's columns (64 neurons), which is the order a single array needs anyway and lets
    ``progress()`` be called after each group.

    Returns
    -------
    dict
        ``pred``, ``dot1``, ``h``, ``dot2`` (estimates), ``codes1`` (row tiles, reads x N, H)
        and ``codes2`` (row tiles, reads x N, 10) as the macro reported them (reads = the
        layer's dither), ``write_failures``, ``timeouts``.
    """
    x = as_pm1_int8(x, "inputs")
    cols = drivers[0].cols
    groups = [slice(g, min(g + cols, weights.hidden)) for g in range(0, weights.hidden, cols)]
    dots, acts, failures, timeouts = [], [], 0, 0
    codes1 = None
    for k, g in enumerate(groups):
        layer = MacroDense(drivers, weights.w1[:, g], weights.theta1[g], verify=verify, dither=hidden_dither)
        # Each tile's codes go straight into the group's columns of the int16 result (the cast
        # astype(np.int16) does): no int64 array of the group's codes is made and copied.
        if codes1 is None:
            codes1 = np.empty(layer.codes_shape(x.shape[0])[:2] + (weights.hidden,), dtype=np.int16)
        out = await layer(x, codes_out=codes1[:, :, g])
        dots.append(out.dot)
        acts.append(out.activations)
        failures += layer.write_failures
        timeouts += out.timeouts
        if progress is not None:
            progress(k + 1, len(groups) + 1)
    h = np.concatenate(acts, axis=1)
    layer2 = MacroDense(drivers, weights.w2, None, verify=verify, dither=output_dither)
    out2 = await layer2(h)
    if progress is not None:
        progress(len(groups) + 1, len(groups) + 1)
    return dict(pred=np.argmax(out2.dot + weights.bias2, axis=1),
                dot1=np.concatenate(dots, axis=1), h=h, dot2=out2.dot,
                codes1=codes1,
                codes2=out2.codes.astype(np.int16),
                write_failures=failures + layer2.write_failures, timeouts=timeouts + out2.timeouts)


async def mlp_job(drivers, config, weights: MlpWeights, x, *, calibrate: bool, seed: int = 0,
                  code_line=None, chunk: int | None = None, progress=None, output_dither: int = 1,
                  hidden_dither: int = 1) -> dict:
    """The whole hardware job: open, configure, calibrate (or load a code line), infer.

    The same coroutine runs on every backend, so two backends given the same seed, config and
    inputs issue the same operations to the same simulated chip and must report the same codes.

    Parameters
    ----------
    drivers : list of firmware.driver.MacroDriver
        Not yet opened.
    config : analog_models.config.MacroConfig
        Supplies the register settings.
    weights : MlpWeights
    x : array_like, shape (N, inputs), ±1
    calibrate : bool
        Run the driver's per-column calibration (offsets and gains) on each array.
    seed : int
        Seed of the calibration patterns.
    code_line : (intercept, gain), optional
        Without calibration: the code-versus-mismatch line to invert (e.g. the design's nominal
        line from :func:`nominal_code_line`); None keeps the driver's default (code = m).
    chunk : int, optional
        Digits per batch: every chunk reprograms the tiles (bounds the memory of the codes).
    progress : callable(done, total), optional
        Called with the work done as ``(digits done, digits)``: at the start, and part way
        through every chunk (after each group of hidden neurons and after the output layer).
    output_dither, hidden_dither : int
        Reads per vector of the output / hidden layer (:class:`apps.bnn.MacroDense` ``dither``).

    Returns
    -------
    dict
        As :func:`hardware_forward`, concatenated over the chunks, plus ``calibration_rms``.
    """
    x = as_pm1_int8(x, "inputs")
    n = x.shape[0]
    if progress is not None:
        progress(0, n)
    rms = []
    for d in drivers:
        await d.open()
        await d.configure(config.register_settings(d.params))
        if calibrate:
            rep = await d.calibrate(seed=seed)
            rms.append(rep.rms_error_codes)
        elif code_line is not None:
            d.set_code_model(*code_line)
    step = max(n if not chunk else int(chunk), 1)
    parts = []
    for start in range(0, n, step):
        size = min(step, n - start)
        stage = None if progress is None else (
            lambda k, m, start=start, size=size: progress(start + (size * k) // m, n))
        parts.append(await hardware_forward(drivers, weights, x[start:start + step], progress=stage,
                                            output_dither=output_dither, hidden_dither=hidden_dither))
    out = {}
    for k, axis in (("pred", 0), ("dot1", 0), ("h", 0), ("dot2", 0), ("codes1", 1), ("codes2", 1)):
        # One chunk (chunk=None): its arrays are the result, no copy needed.
        out[k] = parts[0][k] if len(parts) == 1 else np.concatenate([p[k] for p in parts], axis=axis)
    for k in ("write_failures", "timeouts"):
        out[k] = int(sum(p[k] for p in parts))
    out["calibration_rms"] = float(np.mean(rms)) if rms else float("nan")
    return out


def _model_drivers(config, params, seed: int, arrays: int):
    from firmware.driver import MacroDriver
    from firmware.model import FastMacroModel

    return [MacroDriver(FastMacroModel(params, config, seed=seed, instance=k)) for k in range(arrays)]


def nominal_code_line(config, params=None) -> tuple[float, float]:
    """The design's code-versus-mismatch line, from a noise-free, spread-free copy of the config.

    What a designer knows before measuring a chip: the same fit the driver's calibration does,
    on a twin without device spread, read noise, comparator offsets, jitter or write errors, and
    one line for all columns. "Bare hardware" inverts this line; calibration replaces it by each
    column's measured line plus COL_OFFSET.

    Returns
    -------
    (intercept, gain) : tuple of float
        Raw code = intercept + gain * mismatches.
    """
    from firmware.driver import run_sync
    from macro_spec.params import MacroParams

    params = params or MacroParams()
    quiet = config.replace(**{"device.r_low_sigma_ohm": 0.0, "device.r_high_sigma_ohm": 0.0,
                              "device.read_noise_rel": 0.0, "readout.comparator_offset_sigma_ps": 0.0,
                              "readout.jitter_sigma_ps": 0.0, "sense.noise_rel": 0.0,
                              "write.ic0_p_to_ap_a": 1e-9, "write.ic0_ap_to_p_a": 1e-9})
    (drv,) = _model_drivers(quiet, params, 0, 1)
    run_sync(drv.open())
    run_sync(drv.configure(quiet.register_settings(params)))
    rep = run_sync(drv.calibrate(per_column=False, load_offsets=False, restore_weights=False))
    return float(rep.intercept[0]), float(rep.gain[0])


def run_on_model(weights: MlpWeights, x, *, preset: str = "paper", seed: int = 0, arrays: int = 1,
                 calibrate: bool = True, code_line=None, chunk: int | None = 2500, params=None,
                 config=None, progress=None, output_dither: int = 1, hidden_dither: int = 1) -> dict:
    """:func:`mlp_job` on the fast bit-exact model (batched computes; no event loop).

    Parameters
    ----------
    preset : str
        Analog preset (``ideal``, ``paper``, ``fine``); ignored when ``config`` is given.
    seed : int
        Chip seed (device draws, noise streams) and calibration seed.
    arrays : int
        Arrays to spread the tiles over (1 = one array reprogrammed per tile, as on the chip).
    calibrate, code_line, chunk, progress, output_dither, hidden_dither
        See :func:`mlp_job`. Without calibration and without ``code_line`` the nominal line of
        the config is used (exact under ``ideal``).
    """
    from analog_models.config import preset as make_preset
    from firmware.driver import run_sync
    from macro_spec.params import MacroParams

    params = params or MacroParams()
    config = config or make_preset(preset)
    if not calibrate and code_line is None:
        code_line = nominal_code_line(config, params)
    drivers = _model_drivers(config, params, seed, arrays)
    return run_sync(mlp_job(drivers, config, weights, x, calibrate=calibrate, seed=seed,
                            code_line=code_line, chunk=chunk, progress=progress,
                            output_dither=output_dither, hidden_dither=hidden_dither))


def retune(weights: MlpWeights, x, hw: dict) -> MlpWeights:
    """Threshold retuning against the errors measured on the chip.

    The macro's dot estimates carry errors that are mostly systematic for a given chip and
    weight tile (TDC quantisation of a partial sum that hardly changes between digits, device
    spread in the cells the background pixels select). Given a hardware run ``hw`` on digits
    ``x`` (training digits, never the test set), the mean error of each hidden neuron is added to
    its threshold and the mean error of each class score is removed from its bias.

    Parameters
    ----------
    weights : MlpWeights
        The weights ``hw`` was run with.
    x : numpy.ndarray, shape (N, inputs), ±1
    hw : dict
        Output of :func:`run_on_model` / :func:`mlp_job` for ``x``.

    Returns
    -------
    MlpWeights
        Same ±1 weights, new ``theta1`` and ``bias2`` (the meta records the shifts).
    """
    err1 = np.asarray(hw["dot1"]) - dense_pm1(x, weights.w1)
    err2 = np.asarray(hw["dot2"]) - dense_pm1(hw["h"], weights.w2)
    e1, e2 = err1.mean(axis=0), err2.mean(axis=0)
    meta = dict(weights.meta, retuned_on=int(x.shape[0]), hidden_error_rms=float(err1.std()),
                hidden_bias_rms=float(np.sqrt((e1 ** 2).mean())), output_bias_rms=float(np.sqrt((e2 ** 2).mean())))
    return weights.replace(theta1=weights.theta1 + e1, bias2=weights.bias2 - e2, meta=meta)


def run_on_cosim(weights: MlpWeights, x, *, sim: str = "verilator", preset: str = "paper", seed: int = 0,
                 calibrate: bool = True, code_line=None, chunk: int | None = None, params=None,
                 progress_file=None, output_dither: int = 1, results_tag: str = "") -> dict:
    """:func:`mlp_job` on the co-simulated RTL (one array, every compute over AXI4-Lite).

    Same arguments as :func:`run_on_model` (one array only); the job runs in a simulator
    process through :func:`firmware.cosim.run_job`. ``progress_file``, if given, is rewritten
    with ``"<digits done> <digits>"`` as the simulation goes (for a progress bar).
    ``results_tag`` keeps the results files of simultaneous runs (shards) apart.
    """
    from analog_models.config import preset as make_preset
    from firmware.cosim import run_job
    from macro_spec.params import MacroParams

    params = params or MacroParams()
    if not calibrate and code_line is None:
        code_line = nominal_code_line(make_preset(preset), params)
    arrays = dict(w1=weights.w1, theta1=weights.theta1, w2=weights.w2, bias2=weights.bias2,
                  inputs=as_pm1_int8(x, "inputs"))
    options = dict(calibrate=bool(calibrate), chunk=chunk, crop=weights.crop,
                   progress_file=str(progress_file) if progress_file else None,
                   output_dither=int(output_dither),
                   code_line=[float(v) for v in code_line] if code_line is not None else None)
    out = run_job("apps.mnist_mlp:cosim_mlp_job", sim=sim, params=params, preset=preset, seed=seed, arrays=arrays,
                  options=options, results_tag=results_tag)
    for k in ("write_failures", "timeouts"):
        out[k] = int(out[k])
    out["calibration_rms"] = float(out["calibration_rms"])
    return out


# =========================================================================== training

def train(hidden: int = 256, epochs: int = 20, seed: int = 0, batch: int = 200, lr: float = 5e-3,
          init: float = 0.05, pixel_threshold: int = 128, crop: int = 2, noise1_sigma: float = 0.0,
          noise2_sigma: float = 0.0, limit: int | None = None, log=print) -> MlpWeights:
    """Train the binary perceptron in numpy with the straight-through estimator.

    Latent real weights are clipped to [-1, 1] and binarised by sign in every forward pass; the
    sign activation passes gradients where |pre-activation| <= 1 (hard tanh). The hidden layer
    has batch norm (folded into ``theta1`` at the end); the class scores are ``s * dot + b`` with
    a fixed scale ``s = 3 / sqrt(H)`` for the softmax, and ``b / s`` becomes ``bias2``.

    Parameters
    ----------
    hidden : int
        Hidden units H (a multiple of 64 fills the arrays' columns).
    epochs, batch, lr, init, seed
        Optimiser settings (Adam, cosine decay from ``lr``; latent weights start uniform in
        ±``init``).
    pixel_threshold, crop : int
        Input binarisation and border crop (see :class:`MlpWeights`).
    noise1_sigma, noise2_sigma : float
        Gaussian noise (dot units) added to the hidden and output dot products during training:
        training with the macro's error model.
    limit : int, optional
        Train on the first ``limit`` digits only (for quick tests).

    Returns
    -------
    MlpWeights
        With ``meta`` holding the settings and the final test accuracy in software.
    """
    from .mnist import load_mnist

    rng = np.random.default_rng(seed)
    xi, y = load_mnist("train", limit=limit)
    X = _prep(xi, pixel_threshold, crop).astype(np.float32)
    n, n_in = X.shape
    W1 = rng.uniform(-init, init, (n_in, hidden)).astype(np.float32)
    W2 = rng.uniform(-init, init, (hidden, 10)).astype(np.float32)
    g1 = np.ones(hidden, np.float32)
    b1 = np.zeros(hidden, np.float32)
    b2 = np.zeros(10, np.float32)
    scale = np.float32(3.0 / np.sqrt(hidden))
    params = [W1, W2, g1, b1, b2]
    m1 = [np.zeros_like(p) for p in params]
    m2 = [np.zeros_like(p) for p in params]
    steps_per_epoch = n // batch
    total = epochs * steps_per_epoch
    t = 0
    for ep in range(epochs):
        t0 = time.time()
        perm = rng.permutation(n)
        loss_sum = 0.0
        for k in range(steps_per_epoch):
            idx = perm[k * batch:(k + 1) * batch]
            x, yy = X[idx], y[idx]
            Wb1 = np.where(W1 >= 0, 1, -1).astype(np.float32)
            Wb2 = np.where(W2 >= 0, 1, -1).astype(np.float32)
            a1 = x @ Wb1
            if noise1_sigma:
                a1 += rng.normal(0, noise1_sigma, a1.shape).astype(np.float32)
            mu, var = a1.mean(0), a1.var(0)
            std = np.sqrt(var + 1e-5)
            xhat = (a1 - mu) / std
            z = g1 * xhat + b1
            h = np.where(z >= 0, 1, -1).astype(np.float32)
            a2 = h @ Wb2
            if noise2_sigma:
                a2 += rng.normal(0, noise2_sigma, a2.shape).astype(np.float32)
            logits = scale * a2 + b2
            logits -= logits.max(1, keepdims=True)
            p = np.exp(logits)
            p /= p.sum(1, keepdims=True)
            loss_sum += float(-np.log(p[np.arange(batch), yy] + 1e-12).mean())
            d = p
            d[np.arange(batch), yy] -= 1
            d /= batch
            da2 = d * scale
            gW2 = h.T @ da2
            dz = (da2 @ Wb2.T) * (np.abs(z) <= 1)   # straight-through sign
            dxhat = dz * g1
            da1 = (dxhat - dxhat.mean(0) - xhat * (dxhat * xhat).mean(0)) / std
            grads = [x.T @ da1, gW2, (dz * xhat).sum(0), dz.sum(0), d.sum(0)]
            t += 1
            lr_t = lr * 0.5 * (1 + np.cos(np.pi * t / total))
            for i, (p_, g_) in enumerate(zip(params, grads)):
                m1[i] = 0.9 * m1[i] + 0.1 * g_
                m2[i] = 0.999 * m2[i] + 0.001 * g_ * g_
                p_ -= (lr_t * (m1[i] / (1 - 0.9 ** t)) / (np.sqrt(m2[i] / (1 - 0.999 ** t)) + 1e-8)
                       ).astype(np.float32)
            np.clip(W1, -1, 1, out=W1)
            np.clip(W2, -1, 1, out=W2)
        if log:
            log(f"epoch {ep + 1}/{epochs}: loss {loss_sum / steps_per_epoch:.4f} ({time.time() - t0:.1f} s)")
    # Batch-norm statistics of the final binary weights over the whole training set (exact,
    # instead of running averages that lag the last updates).
    Wb1 = np.where(W1 >= 0, 1, -1).astype(np.int8)
    a1 = dense_pm1(X, Wb1).astype(np.float64)
    w1, theta1 = fold_batchnorm(Wb1, a1.mean(0), a1.var(0), g1, b1)
    w2 = np.where(W2 >= 0, 1, -1).astype(np.int8)
    return MlpWeights(w1, theta1, w2, b2.astype(np.float64) / float(scale), pixel_threshold, crop)


# ============================================================================ command

def _cmd_train(args) -> int:
    from .mnist import load_mnist

    t0 = time.time()
    w = train(hidden=args.hidden, epochs=args.epochs, seed=args.seed, batch=args.batch, lr=args.lr,
              pixel_threshold=args.pixel_threshold, crop=args.crop, noise1_sigma=args.noise1, noise2_sigma=args.noise2)
    xt, yt = load_mnist("test")
    acc = accuracy(software_forward(w, preprocess(xt, w))["pred"], yt)
    w.meta = dict(command="python -m apps.mnist_mlp " + " ".join(sys.argv[1:] if args.argv is None else args.argv),
                  seed=args.seed, hidden=args.hidden, epochs=args.epochs, batch=args.batch, lr=args.lr,
                  pixel_threshold=args.pixel_threshold, crop=args.crop, noise1_sigma=args.noise1, noise2_sigma=args.noise2,
                  software_test_accuracy=acc, train_seconds=round(time.time() - t0, 1),
                  numpy=np.__version__)
    save_weights(w, args.out)
    print(f"software test accuracy {100 * acc:.2f} % ; saved {args.out}")
    return 0


def main(argv=None) -> int:
    """``python -m apps.mnist_mlp train [...]``: retrain and save the committed weights."""
    ap = OneLineArgumentParser(prog="python -m apps.mnist_mlp", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train the binary perceptron and save its weights")
    t.add_argument("--hidden", type=int, default=256)
    t.add_argument("--epochs", type=int, default=20)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--batch", type=int, default=200)
    t.add_argument("--lr", type=float, default=5e-3)
    t.add_argument("--pixel-threshold", type=int, default=128)
    t.add_argument("--crop", type=int, default=2, help="pixels cut from each border")
    t.add_argument("--noise1", type=float, default=0.0, help="hidden dot noise sigma during training")
    t.add_argument("--noise2", type=float, default=0.0, help="output dot noise sigma during training")
    t.add_argument("--out", type=Path, default=DEFAULT_WEIGHTS)
    args = ap.parse_args(argv)
    args.argv = argv
    from .mnist import MnistError
    try:
        return _cmd_train(args)
    except MnistError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


async def cosim_mlp_job(tb, folder, options: dict) -> dict:
    """Co-simulation job (run inside the simulator by ``firmware.cosim_entry``): :func:`mlp_job`
    over the AXI backend, the same coroutine the fast model runs, so the codes must agree bit for bit.
    """
    from pathlib import Path

    from firmware.driver import MacroDriver

    folder = Path(folder)

    w = MlpWeights(np.load(folder / "w1.npy"), np.load(folder / "theta1.npy"), np.load(folder / "w2.npy"),
                   np.load(folder / "bias2.npy"), crop=int(options.get("crop", 2)))
    x = np.load(folder / "inputs.npy")
    line = options.get("code_line")
    progress = None
    if options.get("progress_file"):
        def progress(done, total, path=Path(options["progress_file"])):
            path.write_text(f"{done} {total}\n")
    return await mlp_job([MacroDriver(tb.regs)], tb.config, w, x, calibrate=bool(options.get("calibrate")),
                         seed=tb.seed, code_line=tuple(line) if line else None, chunk=options.get("chunk"),
                         progress=progress, output_dither=int(options.get("output_dither", 1)))


if __name__ == "__main__":
    sys.exit(main())
