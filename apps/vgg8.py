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

Commands::

    python -m apps.vgg8 train --out build/vgg8/vgg8_s0.npz --seed 0 --epochs 4       (see vgg8.json
    python -m apps.vgg8 train --init ... (fine-tuning stages)                          for the exact chain)
    python -m apps.vgg8 compact build/vgg8/<final>.npz apps/weights/vgg8.npz
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

#: Committed weights.
WEIGHTS_PATH = Path(__file__).with_name("weights") / "vgg8.npz"

#: Binary layers (name, kind, in channels, out channels, max pool after).
BINARY_CONVS = [("conv2", 32, 32, False), ("conv3", 32, 64, True), ("conv4", 64, 64, False),
                ("conv5", 64, 128, True), ("conv6", 128, 128, False)]
FC7_IN, FC7_OUT = 128 * 3 * 3, 128
BN_EPS = 1e-5


# ----------------------------------------------------------------------------- data

def load_mnist(split: str, limit: int | None = None):
    """MNIST images (uint8, (N, 28, 28)) and labels, through :mod:`apps.mnist` when present.

    Falls back to a private IDX reader of ``$MNIST_DIR`` or ``../shared/datasets/mnist``
    (only while the shared loader does not exist yet).
    """
    try:
        from .mnist import load_mnist as shared
    except ImportError:
        shared = None
    if shared is not None:
        return shared(split, limit=limit)
    import gzip
    import os
    root = Path(os.environ.get("MNIST_DIR", Path(__file__).resolve().parents[2] / "shared" / "datasets" / "mnist"))
    prefix = {"train": "train", "test": "t10k"}.get(split)
    if prefix is None:
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    with gzip.open(root / f"{prefix}-images-idx3-ubyte.gz") as f:
        img = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(root / f"{prefix}-labels-idx1-ubyte.gz") as f:
        lab = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
    if limit is not None:
        img, lab = img[:limit], lab[:limit]
    return img, lab


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
        p = {k: f[k] for k in f.files}
    for name, *_ in BINARY_CONVS:
        p[f"{name}.wbin"] = conv_weight_matrix(sign(p[f"{name}.weight"]))
    p["fc7.wbin"] = np.ascontiguousarray(sign(p["fc7.weight"]).T)
    return p


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


def _build_torch(noise_sigma: float):
    """The torch VGG-8 (same names as the numpy parameters after :func:`export`)."""
    import torch.nn as nn
    import torch.nn.functional as F

    SignSTE, BinConv, BinLinear = torch_layers(noise_sigma)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Module()
            self.conv1.conv = nn.Conv2d(1, 32, 3, padding=1, bias=False)
            self.conv1.bn = nn.BatchNorm2d(32, eps=BN_EPS)
            self.blocks = nn.ModuleDict()
            for name, cin, cout, _pool in BINARY_CONVS:
                m = nn.Module()
                m.conv = BinConv(cin, cout, 3, bias=False)
                m.bn = nn.BatchNorm2d(cout, eps=BN_EPS)
                self.blocks[name] = m
            self.fc7 = nn.Module()
            self.fc7.fc = BinLinear(FC7_IN, FC7_OUT, bias=False)
            self.fc7.bn = nn.BatchNorm1d(FC7_OUT, eps=BN_EPS)
            self.fc8 = nn.Linear(FC7_OUT, 10)

        def forward(self, x):
            h = SignSTE.apply(self.conv1.bn(F.max_pool2d(self.conv1.conv(x), 2)))
            for name, _cin, _cout, pool in BINARY_CONVS:
                m = self.blocks[name]
                d = m.conv(h)
                if pool:
                    d = F.max_pool2d(d, 2)
                h = SignSTE.apply(m.bn(d))
            h = SignSTE.apply(self.fc7.bn(self.fc7.fc(h.flatten(1))))
            return self.fc8(h)

    return Net()


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


def train(out: Path, seed: int, epochs: int, batch: int, lr: float, noise_sigma: float,
          threads: int, time_limit_s: float, init: Path | None = None, stop_after: int | None = None) -> dict:
    """Train with Adam and a one-cycle schedule, augmenting with ±2 pixel shifts; export .npz + .json.

    With ``init`` the run starts from exported weights and the learning rate decays from
    ``lr`` to 0 on a cosine (a fine-tuning stage).
    """
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        raise SystemExit("error: training needs torch: .venv/bin/pip install torch==2.13.0") from None
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    rng = np.random.default_rng(seed)
    xi, yi = load_mnist("train")
    xt, yt = load_mnist("test")
    x = torch.tensor(xi, dtype=torch.float32)[:, None] / 255.0 - 0.5
    y = torch.tensor(yi)
    net = _build_torch(noise_sigma)
    if init is not None:
        with np.load(init) as f:
            import_params(net, {k: f[k] for k in f.files})
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    steps = epochs * (len(x) // batch)
    if init is None:
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    else:
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    t0 = time.time()
    log = []
    for ep in range(epochs):
        net.train()
        perm = rng.permutation(len(x))
        for s in range(0, len(x) - batch + 1, batch):
            idx = perm[s:s + batch]
            xb = x[idx]
            # Random shifts of up to 2 pixels (pad with the background level, crop back).
            dx, dy = rng.integers(-2, 3, 2)
            xb = F.pad(xb, (2, 2, 2, 2), value=-0.5)[:, :, 2 + dy:30 + dy, 2 + dx:30 + dx]
            loss = F.cross_entropy(net(xb), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            with torch.no_grad():  # latent weights stay in [-1, 1] (BinaryConnect)
                for m in net.modules():
                    if type(m).__name__ in ("BinConv", "BinLinear"):
                        m.weight.clamp_(-1, 1)
        net.eval()
        p = export(net)
        acc = accuracy(_numpy_params(p), xt, yt)
        log.append(dict(epoch=ep + 1, loss=float(loss.item()), test_software=acc, seconds=round(time.time() - t0, 1)))
        print(json.dumps(log[-1]), flush=True)
        if time.time() - t0 > time_limit_s or (stop_after is not None and ep + 1 >= stop_after):
            # A stop before the schedule's end keeps the learning rate where it is; fine-tune after.
            print(f"stopped after epoch {ep + 1}", flush=True)
            break
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **export(net))
    meta = dict(command="python -m apps.vgg8 train " + " ".join(sys.argv[2:]), seed=seed, epochs=epochs,
                init=str(init) if init else None,
                batch=batch, lr=lr, noise_sigma_per_tile=noise_sigma, torch=torch.__version__,
                log=log, test_software=log[-1]["test_software"])
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def _numpy_params(p: dict) -> dict:
    p = dict(p)
    for name, *_ in BINARY_CONVS:
        p[f"{name}.wbin"] = conv_weight_matrix(sign(p[f"{name}.weight"]))
    p["fc7.wbin"] = np.ascontiguousarray(sign(p["fc7.weight"]).T)
    return p


def main(argv=None) -> int:
    ap = OneLineArgumentParser(prog="python -m apps.vgg8", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--out", type=Path, default=WEIGHTS_PATH)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--epochs", type=int, default=4)
    t.add_argument("--batch", type=int, default=128)
    t.add_argument("--lr", type=float, default=3e-3)
    t.add_argument("--noise-sigma", type=float, default=3.5, help="Gaussian dot noise per 64-row tile")
    t.add_argument("--threads", type=int, default=1, help="1 is fastest on a shared 2-core machine")
    t.add_argument("--time-limit-s", type=float, default=float("inf"),
                   help="stop after the epoch that passes this wall time (machine dependent; default none)")
    t.add_argument("--init", type=Path, default=None, help="fine-tune from these exported weights")
    t.add_argument("--stop-after", type=int, default=None, help="run only the first N epochs of the schedule")
    e = sub.add_parser("eval")
    e.add_argument("--weights", type=Path, default=WEIGHTS_PATH)
    e.add_argument("--limit", type=int, default=None)
    e.add_argument("--error-model", type=Path, default=None)
    e.add_argument("--seed", type=int, default=0)
    c = sub.add_parser("compact", help="write the committed copy: binary weights as int8 signs")
    c.add_argument("src", type=Path)
    c.add_argument("dst", type=Path)
    c.add_argument("--net", choices=("vgg8", "face"), default="vgg8")
    a = ap.parse_args(argv)
    if a.cmd == "compact":
        if a.net == "face":
            from .face import BINARY_KEYS as keys
        else:
            keys = BINARY_KEYS
        print(compact(a.src, a.dst, keys))
        return 0
    if a.cmd == "train":
        train(a.out, a.seed, a.epochs, a.batch, a.lr, a.noise_sigma, a.threads, a.time_limit_s, a.init,
              a.stop_after)
        return 0
    from .error_model import load_error_model
    p = load_weights(a.weights)
    x, y = load_mnist("test", limit=a.limit)
    t0 = time.time()
    sw = accuracy(p, x, y)
    t1 = time.time()
    em = load_error_model(a.error_model)
    hw = accuracy(p, x, y, em, seed=a.seed)
    print(json.dumps(dict(n=len(y), software=sw, emulated=hw, software_s=round(t1 - t0, 1),
                          emulated_s=round(time.time() - t1, 1))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
