"""Binary VGG-8 on MNIST: training (torch, optional), numpy inference, and emulation with
the macro's measured dot-product errors (the paper's method for its VGG-8 result).

Network (8 weight layers; "bin" = ±1 weights and ±1 inputs, the layers the macro would run)::

    layer  kind              in -> out       map               K = inputs per output   64-row tiles
    conv1  3x3 float         1 -> 32         28x28 -> pool 14  9                        (host)
    conv2  3x3 bin           32 -> 32        14x14             288                      5 (last holds 32 rows)
    conv3  3x3 bin           32 -> 64        14x14 -> pool 7   288                      5
    conv4  3x3 bin           64 -> 64        7x7               576                      9
    conv5  3x3 bin           64 -> 128       7x7 -> pool 3     576                      9
    conv6  3x3 bin           128 -> 128      3x3               1152                     18
    fc7    bin               1152 -> 128                       1152                     18
    fc8    float             128 -> 10                         128                      (host)

Every binary layer is followed by (max pool,) batch norm and sign; the batch norm and sign fold
into the column threshold of a binary neuron on the macro. The first layer sees grey levels and
the last layer produces class scores, so both stay in floating point, as is customary for
binary networks (Courbariaux et al. 2016, Rastegari et al. 2016). Convolutions pad with -1,
not 0, because the array has no zero input: every binary layer's input is strictly ±1 in
training and inference alike.

Emulation: each binary layer's dot products are computed exactly in numpy, cut into the
64-row partial sums the tiling of :mod:`firmware.tiling` would compute (input index
``a*64 ... a*64+63`` in the im2col order ``(ky, kx, channel)``), each partial sum is replaced
by a sample of the measured error model P(estimate | true dot) (:mod:`apps.error_model`), and
the estimates are summed. The padding of a short last tile is accounted for as the driver does
it (its exact dot is added before sampling and removed after).

Training and selection: the last 5,000 MNIST training digits (55,000..59,999) are held out
as a fixed validation split; the net trains on the first 55,000 with one Adam one-cycle run,
and the epoch with the highest validation accuracy is kept (:func:`train`). The 10,000 test
digits are used once, by ``eval`` on the chosen weights (``apps/weights/vgg8.json`` records
the run, its per-epoch validation log and the final test accuracies).

Commands (the committed weights; torch 2.13.0 CPU, one thread)::

    python -m apps.vgg8 train --out build/vgg8/vgg8_v1.npz --seed 0 --epochs 10 --lr 3e-3 \
        --noise-sigma 5 --label-smoothing 0.1 --threads 1
    python -m apps.vgg8 compact build/vgg8/vgg8_v1.npz apps/weights/vgg8.npz
    python -m apps.vgg8 eval  [--weights apps/weights/vgg8.npz] [--limit N] [--error-model PATH]
"""

from __future__ import annotations

import argparse

from macro_spec.cli import OneLineArgumentParser
import json
import sys
import time
from pathlib import Path

import numpy as np

from .error_model import ROWS as TILE_ROWS
from .mnist import load_mnist

#: Committed weights.
WEIGHTS_PATH = Path(__file__).with_name("weights") / "vgg8.npz"

#: Binary layers (name, kind, in channels, out channels, max pool after).
BINARY_CONVS = [("conv2", 32, 32, False), ("conv3", 32, 64, True), ("conv4", 64, 64, False),
                ("conv5", 64, 128, True), ("conv6", 128, 128, False)]
FC7_IN, FC7_OUT = 128 * 3 * 3, 128
BN_EPS = 1e-5


# ------------------------------------------------------------------------ numpy net

def sign(x: np.ndarray) -> np.ndarray:
    """±1 with sign(0) = +1 (as in training), as int8."""
    return np.where(x >= 0, 1, -1).astype(np.int8)


def im2col(x: np.ndarray, pad_value: float) -> np.ndarray:
    """3x3 patches of x (N, H, W, C), padding 1 with ``pad_value``: (N, H, W, 9*C).

    The patch order is (ky, kx, channel), matching :func:`conv_weight_matrix`.
    """
    n, h, w, c = x.shape
    xp = np.full((n, h + 2, w + 2, c), pad_value, dtype=x.dtype)
    xp[:, 1:-1, 1:-1] = x
    cols = [xp[:, ky:ky + h, kx:kx + w] for ky in range(3) for kx in range(3)]
    return np.concatenate(cols, axis=-1)


def conv_weight_matrix(w: np.ndarray) -> np.ndarray:
    """Torch conv weight (out, in, 3, 3) -> matrix (9*in, out) in (ky, kx, channel) order."""
    return np.ascontiguousarray(np.transpose(w, (2, 3, 1, 0)).reshape(-1, w.shape[0]))


def maxpool2(x: np.ndarray) -> np.ndarray:
    """2x2 max pool, stride 2, floor (N, H, W, C)."""
    n, h, w, c = x.shape
    h2, w2 = h // 2, w // 2
    x = x[:, :2 * h2, :2 * w2].reshape(n, h2, 2, w2, 2, c)
    return x.max(axis=(2, 4))


def batchnorm(x: np.ndarray, p: dict, name: str) -> np.ndarray:
    """Inference batch norm of layer ``name`` (running statistics of ``p``) over the last axis."""
    g, b = p[f"{name}.bn.weight"], p[f"{name}.bn.bias"]
    m, v = p[f"{name}.bn.running_mean"], p[f"{name}.bn.running_var"]
    return (x - m) / np.sqrt(v + BN_EPS) * g + b


def binary_dot(x_pm1: np.ndarray, w_pm1: np.ndarray, error_model=None, rng=None,
               chunk: int = 4096) -> np.ndarray:
    """Dot products of ±1 rows ``x`` (M, K) with ±1 weights (K, out), optionally emulated.

    Without ``error_model`` the exact products (float32, exact for these integer sizes).
    With it, the K inputs are cut into 64-row tiles, each (row, output, tile) partial sum is
    replaced by a sample of the model, and the samples are summed.
    """
    m, k = x_pm1.shape
    w32 = w_pm1.astype(np.float32)
    if error_model is None:
        return x_pm1.astype(np.float32) @ w32
    tiles = -(-k // TILE_ROWS)
    short = tiles * TILE_ROWS - k
    # The driver pads a short tile with +1, -1, ... weights driven by +1: their exact dot is
    # (short mod 2), which is added before the estimate and subtracted after.
    pad_dot = short % 2
    wt = np.zeros((tiles * TILE_ROWS, w_pm1.shape[1]), np.float32)
    wt[:k] = w32
    wt = wt.reshape(tiles, TILE_ROWS, -1)
    out = np.empty((m, w_pm1.shape[1]), np.float32)
    for s in range(0, m, chunk):
        xs = np.zeros((min(chunk, m - s), tiles * TILE_ROWS), np.float32)
        xs[:, :k] = x_pm1[s:s + chunk]
        xs = xs.reshape(xs.shape[0], tiles, TILE_ROWS)
        acc = np.zeros((xs.shape[0], w_pm1.shape[1]), np.float32)
        for a in range(tiles):
            part = (xs[:, a] @ wt[a]).astype(np.int32)
            if a == tiles - 1:
                part += pad_dot
            acc += error_model.sample(part, rng)
        out[s:s + chunk] = acc - pad_dot
    return out


def forward(p: dict, images: np.ndarray, error_model=None, seed: int = 0,
            batch: int = 500) -> np.ndarray:
    """Class scores (N, 10) of uint8 images (N, 28, 28) with the numpy network.

    Parameters
    ----------
    p : dict of str to numpy.ndarray
        The exported parameters (:data:`WEIGHTS_PATH`).
    images : numpy.ndarray of uint8, shape (N, 28, 28)
    error_model : apps.error_model.ErrorModel or None
        Emulate every binary layer with it; None computes exactly (software accuracy).
    seed : int
        Seed of the error samples.
    """
    rng = np.random.default_rng(seed)
    scores = []
    for s in range(0, len(images), batch):
        x = images[s:s + batch].astype(np.float32)[..., None] / 255.0 - 0.5
        n = x.shape[0]
        # conv1: float, zero padding of the normalised image (a host layer).
        w1 = conv_weight_matrix(p["conv1.weight"])
        cols = im2col(x, 0.0)
        h = (cols.reshape(-1, 9) @ w1).reshape(n, 28, 28, -1)
        h = sign(batchnorm(maxpool2(h), p, "conv1"))
        for name, _cin, cout, pool in BINARY_CONVS:
            _, hh, ww, _ = h.shape
            cols = im2col(h, -1).reshape(n * hh * ww, -1)
            d = binary_dot(cols, p[f"{name}.wbin"], error_model, rng).reshape(n, hh, ww, cout)
            if pool:
                d = maxpool2(d)
            h = sign(batchnorm(d, p, name))
        # Flatten in torch's (C, H, W) order so that fc7 matches the trained weights.
        flat = np.ascontiguousarray(np.transpose(h, (0, 3, 1, 2)).reshape(n, -1))
        d = binary_dot(flat, p["fc7.wbin"], error_model, rng)
        h = sign(batchnorm(d, p, "fc7"))
        scores.append(h.astype(np.float32) @ p["fc8.weight"].T + p["fc8.bias"])
    return np.concatenate(scores)


def compact(src: Path, dst: Path, binary_keys) -> Path:
    """Copy exported weights with the binary layers' latent floats replaced by int8 signs.

    Inference only uses the signs, so the committed file is ~20x smaller; the float latent
    weights stay in build/ for fine-tuning.
    """
    with np.load(src) as f:
        p = {k: f[k] for k in f.files}
    for k in binary_keys:
        p[k] = sign(p[k])
    dst.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(dst, **p)
    return dst


#: Keys of the binary weight tensors (stored as int8 signs in the committed file).
BINARY_KEYS = [f"{name}.weight" for name, *_ in BINARY_CONVS] + ["fc7.weight"]


def load_weights(path: str | Path = WEIGHTS_PATH) -> dict:
    """The exported parameters; binary matrices as int8 ±1 (K, out) under ``<layer>.wbin``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no VGG-8 weights at {path}: run python -m apps.vgg8 train")
    with np.load(path) as f:
        return with_binary({k: f[k] for k in f.files})


def binary_matrices(p: dict, conv_names, fc_name: str) -> dict:
    """A copy of exported parameters with each binary layer's int8 ±1 matrix (K, out) as ``<layer>.wbin``.

    ``conv_names`` are the binary 3x3 convolutions (im2col order of :func:`conv_weight_matrix`),
    ``fc_name`` the binary fully connected layer. Shared by VGG-8 and :mod:`apps.face`.
    """
    p = dict(p)
    for name in conv_names:
        p[f"{name}.wbin"] = conv_weight_matrix(sign(p[f"{name}.weight"]))
    p[f"{fc_name}.wbin"] = np.ascontiguousarray(sign(p[f"{fc_name}.weight"]).T)
    return p


def with_binary(p: dict) -> dict:
    """VGG-8's exported parameters plus the ±1 matrices ``<layer>.wbin`` (:func:`binary_matrices`)."""
    return binary_matrices(p, [name for name, *_ in BINARY_CONVS], "fc7")


def accuracy(p: dict, images, labels, error_model=None, seed: int = 0) -> float:
    """Fraction of ``images`` classified as ``labels``."""
    return float((forward(p, images, error_model, seed).argmax(1) == labels).mean())


# ---------------------------------------------------------------------- training

def torch_layers(noise_sigma: float):
    """Torch building blocks of a binary net: ``(SignSTE, BinConv, BinLinear)``.

    ``BinConv`` is a 3x3 convolution padded with -1 and ``BinLinear`` a linear layer, both
    with sign-binarised weights (straight-through gradients, BinaryConnect). During training
    their outputs get Gaussian noise of ``noise_sigma`` per 64-row tile (sigma grows as the
    square root of the tiles a dot product spans): a cheap stand-in for the measured errors so
    that the thresholds learn margins; gradients pass through unchanged.
    """
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class SignSTE(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return torch.where(x >= 0, 1.0, -1.0)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * (x.abs() <= 1).to(g.dtype)

    def add_noise(d, k):
        if noise_sigma > 0 and torch.is_grad_enabled():
            tiles = -(-k // TILE_ROWS)
            d = d + torch.randn_like(d) * (noise_sigma * tiles ** 0.5)
        return d

    class BinConv(nn.Conv2d):
        def forward(self, x):
            wb = SignSTE.apply(self.weight)
            x = F.pad(x, (1, 1, 1, 1), value=-1.0)
            return add_noise(F.conv2d(x, wb), self.weight[0].numel())

    class BinLinear(nn.Linear):
        def forward(self, x):
            return add_noise(F.linear(x, SignSTE.apply(self.weight)), self.in_features)

    return SignSTE, BinConv, BinLinear


def require_torch():
    """Import torch for training, or end with a one-line hint (inference needs numpy only)."""
    try:
        import torch
    except ImportError:
        raise SystemExit("error: training needs torch: .venv/bin/pip install torch==2.13.0") from None
    return torch


def binary_vgg_torch(noise_sigma: float, conv1_out: int, binary_convs, pool_conv1: bool, fc_name: str,
                     fc_in: int, fc_out: int, head_name: str, classes: int):
    """A torch binary VGG: float conv1, binary 3x3 convs, one binary fc layer, float head.

    ``conv1`` (1 -> ``conv1_out``, zero padded, max pool if ``pool_conv1``), then for each
    ``(name, in, out, pool)`` of ``binary_convs`` a -1 padded binary convolution (max pool),
    then ``fc_name`` (``fc_in`` -> ``fc_out``, binary) and ``head_name`` (``fc_out`` ->
    ``classes``, float). Every hidden layer ends in batch norm and sign. The parameter names
    match :func:`export` (``conv1``, ``<name>``, ``fc_name``, ``head_name``). VGG-8 and
    :mod:`apps.face` are both built with it.
    """
    import torch.nn as nn
    import torch.nn.functional as F

    SignSTE, BinConv, BinLinear = torch_layers(noise_sigma)

    class Net(nn.Module):
        """The binary VGG described by the arguments of :func:`binary_vgg_torch`."""

        def __init__(self):
            super().__init__()
            self.conv1 = nn.Module()
            self.conv1.conv = nn.Conv2d(1, conv1_out, 3, padding=1, bias=False)
            self.conv1.bn = nn.BatchNorm2d(conv1_out, eps=BN_EPS)
            self.blocks = nn.ModuleDict()
            for name, cin, cout, _pool in binary_convs:
                m = nn.Module()
                m.conv = BinConv(cin, cout, 3, bias=False)
                m.bn = nn.BatchNorm2d(cout, eps=BN_EPS)
                self.blocks[name] = m
            fc = nn.Module()
            fc.fc = BinLinear(fc_in, fc_out, bias=False)
            fc.bn = nn.BatchNorm1d(fc_out, eps=BN_EPS)
            setattr(self, fc_name, fc)
            setattr(self, head_name, nn.Linear(fc_out, classes))

        def forward(self, x):
            h = self.conv1.conv(x)
            if pool_conv1:
                h = F.max_pool2d(h, 2)
            h = SignSTE.apply(self.conv1.bn(h))
            for name, _cin, _cout, pool in binary_convs:
                m = self.blocks[name]
                d = m.conv(h)
                if pool:
                    d = F.max_pool2d(d, 2)
                h = SignSTE.apply(m.bn(d))
            fc = getattr(self, fc_name)
            h = SignSTE.apply(fc.bn(fc.fc(h.flatten(1))))
            return getattr(self, head_name)(h)

    return Net()


def clamp_latent(net) -> None:
    """Clip the latent float weights of every binary layer of ``net`` to [-1, 1] (BinaryConnect)."""
    import torch
    with torch.no_grad():
        for m in net.modules():
            if type(m).__name__ in ("BinConv", "BinLinear"):
                m.weight.clamp_(-1, 1)


def _build_torch(noise_sigma: float):
    """The torch VGG-8 (same names as the numpy parameters after :func:`export`)."""
    return binary_vgg_torch(noise_sigma, 32, BINARY_CONVS, True, "fc7", FC7_IN, FC7_OUT, "fc8", 10)


def export(net) -> dict:
    """Torch parameters -> the numpy names used by :func:`forward`."""
    sd = {k: v.detach().cpu().numpy() for k, v in net.state_dict().items()}
    out = {}
    for k, v in sd.items():
        if k.endswith("num_batches_tracked"):
            continue
        k = k.replace("blocks.", "").replace(".conv.weight", ".weight").replace(".fc.weight", ".weight")
        out[k] = v.astype(np.float32)
    return out


def import_params(net, p: dict) -> None:
    """Load exported numpy parameters (:func:`export`) back into a torch net (for fine-tuning)."""
    import torch
    sd = net.state_dict()
    names = {}
    for k in sd:
        if k.endswith("num_batches_tracked"):
            continue
        names[k.replace("blocks.", "").replace(".conv.weight", ".weight").replace(".fc.weight", ".weight")] = k
    missing = set(names) - set(p)
    if missing:
        raise ValueError(f"parameters missing from the file: {sorted(missing)[:3]}")
    net.load_state_dict({**sd, **{names[k]: torch.tensor(p[k]) for k in names}})


#: Digits at the end of the MNIST training set held out for validation (selection and stopping).
VAL_DIGITS = 5000


def split_train_val(images: np.ndarray, labels: np.ndarray, val: int = VAL_DIGITS):
    """The fixed hold-out: ``(train_x, train_y), (val_x, val_y)``, validation = the last ``val`` digits.

    The 10,000 test digits are never used for training, selection or stopping.
    """
    if not 0 < val < len(images):
        raise ValueError(f"the validation split must hold 1..{len(images) - 1} digits, not {val}")
    cut = len(images) - val
    return (images[:cut], labels[:cut]), (images[cut:], labels[cut:])


def shift_batch(xb, rng: np.random.Generator, max_shift: int = 2, background: float = -0.5):
    """Shift every image of ``xb`` (B, 1, 28, 28) by its own random (dx, dy) in ±``max_shift`` pixels.

    The image is padded with the background level and cropped back to its size.
    """
    import torch
    import torch.nn.functional as F
    n, _, h, w = xb.shape
    xp = F.pad(xb, (max_shift,) * 4, value=background)
    dy = torch.from_numpy(rng.integers(0, 2 * max_shift + 1, n))
    dx = torch.from_numpy(rng.integers(0, 2 * max_shift + 1, n))
    rows = (dy[:, None] + torch.arange(h))[:, :, None]
    cols = (dx[:, None] + torch.arange(w))[:, None, :]
    return xp[torch.arange(n)[:, None, None], 0, rows, cols][:, None]


def train(out: Path, seed: int, epochs: int, batch: int, lr: float, noise_sigma: float,
          threads: int, time_limit_s: float = float("inf"), init: Path | None = None,
          stop_after: int | None = None, val: int = VAL_DIGITS, label_smoothing: float = 0.0,
          pct_start: float = 0.15, error_model: Path | None = None) -> dict:
    """Train on the first 60,000 - ``val`` training digits; select the epoch on the held-out rest.

    Adam with a one-cycle schedule (peak ``lr``), per-image random ±2 pixel shifts, optional
    label smoothing. After every epoch the numpy network is evaluated on the validation digits,
    in software and emulated with the measured error model (``error_model``, default the
    committed long-run table, error draws seeded 0). The epoch with the highest validation
    software accuracy (ties: higher emulated, then later) is written to ``out`` (.npz, latent
    float weights) with a .json log beside it; the file is rewritten after every epoch so that
    an interrupted run leaves its best epoch so far. The test set is not touched.

    With ``init`` the run starts from exported weights and the learning rate decays from
    ``lr`` to 0 on a cosine (a fine-tuning stage).
    """
    torch = require_torch()
    import torch.nn.functional as F

    from .error_model import COMMITTED_PATH, ErrorModel
    em = ErrorModel.load(error_model or COMMITTED_PATH)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    rng = np.random.default_rng(seed)
    xi, yi = load_mnist("train")
    (xi, yi), (xv, yv) = split_train_val(xi, np.asarray(yi, np.int64), val)
    x = torch.tensor(xi, dtype=torch.float32)[:, None] / 255.0 - 0.5
    y = torch.tensor(yi)
    net = _build_torch(noise_sigma)
    if init is not None:
        with np.load(init) as f:
            import_params(net, {k: f[k] for k in f.files})
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    steps = epochs * (len(x) // batch)
    if init is None:
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=pct_start)
    else:
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    meta = dict(command="python -m apps.vgg8 train " + " ".join(sys.argv[2:]), seed=seed, epochs=epochs,
                init=str(init) if init else None, batch=batch, lr=lr, pct_start=pct_start,
                label_smoothing=label_smoothing, noise_sigma_per_tile=noise_sigma, threads=threads,
                train_digits=f"MNIST train 0..{len(xi) - 1}",
                validation_digits=f"MNIST train {len(xi)}..{len(xi) + len(xv) - 1} (last {len(xv)})",
                validation_error_model=str(error_model) if error_model else f"apps/weights/{COMMITTED_PATH.name}",
                torch=torch.__version__, log=[])
    log = meta["log"]
    best_key, t0 = None, time.time()
    for ep in range(epochs):
        net.train()
        perm = rng.permutation(len(x))
        total, count = 0.0, 0
        for s in range(0, len(x) - batch + 1, batch):
            idx = perm[s:s + batch]
            loss = F.cross_entropy(net(shift_batch(x[idx], rng)), y[idx], label_smoothing=label_smoothing)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            clamp_latent(net)
            total, count = total + float(loss.detach()), count + 1
        net.eval()
        p = export(net)
        npp = with_binary(p)
        log.append(dict(epoch=ep + 1, train_loss=round(total / max(count, 1), 5),
                        val_software=accuracy(npp, xv, yv), val_emulated=accuracy(npp, xv, yv, em, seed=0),
                        lr_end=float(sched.get_last_lr()[0]), seconds=round(time.time() - t0, 1)))
        print(json.dumps(log[-1]), flush=True)
        key = (log[-1]["val_software"], log[-1]["val_emulated"], ep)
        if best_key is None or key > best_key:
            best_key = key
            out.parent.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(out, **p)
        meta.update(selected_epoch=best_key[2] + 1, val_software=best_key[0], val_emulated=best_key[1],
                    selection="epoch of highest validation software accuracy (ties: emulated, then later)")
        out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
        if time.time() - t0 > time_limit_s or (stop_after is not None and ep + 1 >= stop_after):
            # A stop before the schedule's end keeps the learning rate where it is; fine-tune after.
            print(f"stopped after epoch {ep + 1}", flush=True)
            break
    return meta


def _positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text}")
    return v


def _positive_float(text: str) -> float:
    """argparse type: a float > 0."""
    v = float(text)
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {text}")
    return v


def main(argv=None) -> int:
    """The command line: ``train``, ``eval`` and ``compact`` (see the module docstring)."""
    ap = OneLineArgumentParser(prog="python -m apps.vgg8", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train (torch) and select the epoch on the validation digits")
    t.add_argument("--out", type=Path, default=Path("build/vgg8/vgg8.npz"))
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--epochs", type=_positive_int, default=12)
    t.add_argument("--batch", type=_positive_int, default=128)
    t.add_argument("--lr", type=_positive_float, default=3e-3)
    t.add_argument("--pct-start", type=float, default=0.15, help="warm-up fraction of the one-cycle schedule")
    t.add_argument("--label-smoothing", type=float, default=0.0)
    t.add_argument("--noise-sigma", type=float, default=3.5, help="Gaussian dot noise per 64-row tile")
    t.add_argument("--val", type=_positive_int, default=VAL_DIGITS,
                   help="hold out the last N training digits for validation")
    t.add_argument("--error-model", type=Path, default=None,
                   help="error table for the emulated validation accuracy (default: the committed one)")
    t.add_argument("--threads", type=_positive_int, default=1, help="1 is fastest on a shared 2-core machine")
    t.add_argument("--time-limit-s", type=_positive_float, default=float("inf"),
                   help="stop after the epoch that passes this wall time (machine dependent; default none)")
    t.add_argument("--init", type=Path, default=None, help="fine-tune from these exported weights")
    t.add_argument("--stop-after", type=_positive_int, default=None, help="run only the first N epochs of the schedule")
    e = sub.add_parser("eval", help="software and emulated accuracy on the 10,000 test digits")
    e.add_argument("--weights", type=Path, default=WEIGHTS_PATH)
    e.add_argument("--limit", type=_positive_int, default=None)
    e.add_argument("--error-model", type=Path, default=None)
    e.add_argument("--seed", type=int, default=0)
    c = sub.add_parser("compact", help="write the committed copy: binary weights as int8 signs")
    c.add_argument("src", type=Path)
    c.add_argument("dst", type=Path)
    c.add_argument("--net", choices=("vgg8", "face"), default="vgg8")
    a = ap.parse_args(argv)
    from .mnist import MnistError
    if a.cmd == "train":
        if not 0 <= a.label_smoothing < 1:
            ap.error(f"--label-smoothing must be in [0, 1), not {a.label_smoothing}")
        if not 0 < a.pct_start < 1:
            ap.error(f"--pct-start must be in (0, 1), not {a.pct_start}")
        if a.noise_sigma < 0:
            ap.error(f"--noise-sigma must be >= 0, not {a.noise_sigma}")
        if a.val >= 60000:
            ap.error(f"--val must be below the 60,000 training digits, not {a.val}")
    for name in ("init", "error_model", "weights", "src"):
        path = getattr(a, name, None)
        if path is not None and not path.is_file():
            ap.error(f"{name if name == 'src' else '--' + name.replace('_', '-')}: no such file: {path}")
    try:
        if a.cmd == "compact":
            if a.net == "face":
                from .face import BINARY_KEYS as keys
            else:
                keys = BINARY_KEYS
            print(compact(a.src, a.dst, keys))
            return 0
        if a.cmd == "train":
            train(a.out, a.seed, a.epochs, a.batch, a.lr, a.noise_sigma, a.threads, a.time_limit_s, a.init,
                  a.stop_after, a.val, a.label_smoothing, a.pct_start, a.error_model)
            return 0
        from .error_model import load_error_model
        p = load_weights(a.weights)
        x, y = load_mnist("test", limit=a.limit)
        t0 = time.time()
        sw = accuracy(p, x, y)
        t1 = time.time()
        em = load_error_model(a.error_model)
        hw = accuracy(p, x, y, em, seed=a.seed)
    except (OSError, ValueError, KeyError, MnistError) as exc:  # unreadable or wrong files, no data set
        print(f"python -m apps.vgg8: error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
              file=sys.stderr)
        return 1
    print(json.dumps(dict(n=len(y), software=sw, emulated=hw, software_s=round(t1 - t0, 1),
                          emulated_s=round(time.time() - t1, 1))))
    return 0

if __name__ == "__main__":
    sys.exit(main())
