"""Face detection with a 10-layer binary VGG-like net; its 7th conv layer runs on 4 arrays.

Data (all from scikit-image, no download): ``skimage.data.lfw_subset()`` gives 100 face and
100 non-face 25 x 25 crops (floats in 0..1). More non-faces are cut at random positions and
scales from other test images (:data:`NONFACE_TRAIN_IMAGES`, :data:`NONFACE_TEST_IMAGES`;
``astronaut`` is kept out because it is the detection picture, ``chelsea``/``cat`` because a
cat's face is a face-like non-face we would rather not argue about). The lfw crops are split
70/30 by index (seeded permutation); non-face crops from other images are split by image, so
no test crop shares pixels with a training crop. Every sample is a 24 x 24 window: training
takes random 24 x 24 crops of the 25 x 25 lfw images plus horizontal flips; test takes the
four corner crops and their flips of each held-out crop (8 views, all different pixels).

Network (10 weight layers, "bin" = ±1 weights and inputs)::

    #   layer   kind        in -> out   map     K (inputs per output)
    1   conv1   3x3 float   1 -> 16     24x24   9          host
    2   conv2   3x3 bin     16 -> 16    24x24   144        then maxpool -> 12x12
    3   conv3   3x3 bin     16 -> 32    12x12   144
    4   conv4   3x3 bin     32 -> 32    12x12   288        then maxpool -> 6x6
    5   conv5   3x3 bin     32 -> 32    6x6     288
    6   conv6   3x3 bin     32 -> 28    6x6     288        then maxpool -> 3x3
    7   conv7   3x3 bin     28 -> 64    3x3     252        ON THE MACRO: 4 row tiles x 1 column tile = 4 arrays
    8   conv8   3x3 bin     64 -> 64    3x3     576
    9   fc9     bin         576 -> 64           576
    10  fc10    float       64 -> 2             64         host

conv6 has 28 outputs so that conv7's 3 x 3 x 28 = 252 inputs fill four 64-row arrays (the
last holds 60 rows and 4 padding rows) and its 64 outputs one array width: the layer is
resident on 4 arrays, each programmed once, exactly the paper's "7th conv layer on 4 arrays".
conv7 goes through :class:`firmware.tiling.TiledMatvec` with 4 :class:`SyncMacroDriver` on 4
fast models (``paper`` preset, seeds ``seed, instance 0..3``, each calibrated); the other
layers run in numpy.

Commands::

    python -m apps.face train --seed 0
    python -m apps.face eval  [--backend numpy|macro]
    python -m apps.face detect --out build/face/astronaut.png
"""

from __future__ import annotations

import argparse

from macro_spec.cli import OneLineArgumentParser
import json
import sys
import time
from pathlib import Path

import numpy as np

from .vgg8 import (batchnorm, binary_matrices, binary_vgg_torch, clamp_latent, conv_weight_matrix, im2col, maxpool2,
                   require_torch, sign)

WEIGHTS_PATH = Path(__file__).with_name("weights") / "face.npz"
BUILD_DIR = Path("build") / "face"
WIN = 24

#: (name, in, out, maxpool after) of the binary convolutions; conv7 is the macro layer.
BINARY_CONVS = [("conv2", 16, 16, True), ("conv3", 16, 32, False), ("conv4", 32, 32, True),
                ("conv5", 32, 32, False), ("conv6", 32, 28, True), ("conv7", 28, 64, False),
                ("conv8", 64, 64, False)]
MACRO_LAYER = "conv7"
FC9_IN, FC9_OUT = 64 * 3 * 3, 64
#: Keys of the binary weight tensors (int8 signs in the committed file).
BINARY_KEYS = [f"{name}.weight" for name, *_ in BINARY_CONVS] + ["fc9.weight"]

NONFACE_TRAIN_IMAGES = ["camera", "coins", "moon", "text", "page", "coffee", "brick", "grass",
                        "immunohistochemistry", "cell", "clock"]
NONFACE_TEST_IMAGES = ["rocket", "gravel", "hubble_deep_field", "colorwheel", "microaneurysms", "checkerboard"]


# --------------------------------------------------------------------------- data

def _grey(name: str) -> np.ndarray:
    import skimage.data
    from skimage.color import rgb2gray, rgba2rgb
    im = getattr(skimage.data, name)()
    if im.ndim == 3 and im.shape[2] == 4:
        im = rgba2rgb(im)
    if im.ndim == 3:
        im = rgb2gray(im)
    im = im.astype(np.float64)
    return im / 255.0 if im.max() > 1.0 else im


def random_crops(names, n_per_image: int, rng: np.random.Generator, size: int = 25) -> np.ndarray:
    """``n_per_image`` crops of side ``size`` per image, each from a random level of a pyramid
    rescaled by 0.08 .. 0.5 (so that crops show structure at face scale and coarser)."""
    from skimage.transform import rescale
    out = []
    for name in names:
        im = _grey(name)
        levels = []
        for s in np.geomspace(0.08, 0.5, 6):
            s = max(s, size * 1.01 / min(im.shape))
            levels.append(rescale(im, s, anti_aliasing=True))
        for _ in range(n_per_image):
            small = levels[rng.integers(len(levels))]
            y = rng.integers(0, small.shape[0] - size + 1)
            x = rng.integers(0, small.shape[1] - size + 1)
            out.append(small[y:y + size, x:x + size])
    return np.array(out)


def lfw_split(seed: int = 0):
    """The lfw crops split 70/30 as :func:`make_dataset` does: (train_f, test_f, train_n, test_n)."""
    import skimage.data
    rng = np.random.default_rng(seed)
    lfw = skimage.data.lfw_subset()
    faces, nonfaces = lfw[:100], lfw[100:]
    pf, pn = rng.permutation(100), rng.permutation(100)
    return faces[pf[:70]], faces[pf[70:]], nonfaces[pn[:70]], nonfaces[pn[70:]], rng


def make_dataset(seed: int = 0, crops_per_image: int = 120, test_crops_per_image: int = 10):
    """Train and test sets of 25 x 25 crops in 0..1 with labels (1 = face).

    Returns
    -------
    dict with ``train_x``, ``train_y``, ``test_x``, ``test_y`` (25 x 25 crops; windows are cut
    from them by :func:`train_views` / :func:`test_views`).
    """
    tr_f, te_f, tr_n, te_n, rng = lfw_split(seed)
    tr_o = random_crops(NONFACE_TRAIN_IMAGES, crops_per_image, rng)
    te_o = random_crops(NONFACE_TEST_IMAGES, test_crops_per_image, rng)
    train_x = np.concatenate([tr_f, tr_n, tr_o])
    train_y = np.concatenate([np.ones(len(tr_f)), np.zeros(len(tr_n) + len(tr_o))]).astype(np.int64)
    test_x = np.concatenate([te_f, te_n, te_o])
    test_y = np.concatenate([np.ones(len(te_f)), np.zeros(len(te_n) + len(te_o))]).astype(np.int64)
    return dict(train_x=train_x, train_y=train_y, test_x=test_x, test_y=test_y)


def test_views(x: np.ndarray, y: np.ndarray):
    """The 4 corner 24 x 24 crops of each 25 x 25 crop and their mirror images (8 views)."""
    views, labels = [], []
    for dy in (0, 1):
        for dx in (0, 1):
            v = x[:, dy:dy + WIN, dx:dx + WIN]
            views += [v, v[:, :, ::-1]]
            labels += [y, y]
    return np.concatenate(views), np.concatenate(labels)


def normalise(win: np.ndarray) -> np.ndarray:
    """Per-window contrast normalisation (zero mean, unit spread): detection across lighting."""
    w = win.reshape(len(win), -1)
    w = (w - w.mean(1, keepdims=True)) / (w.std(1, keepdims=True) + 0.05)
    return w.reshape(win.shape).astype(np.float32)


# ------------------------------------------------------------------------ numpy net

class MacroLayer:
    """conv7 on 4 arrays: :class:`TiledMatvec` over 4 fast models behind the driver.

    Parameters
    ----------
    weights : numpy.ndarray of int8, shape (252, 64)
        The ±1 matrix of conv7 (im2col order).
    preset_name : str
    seed : int
        Chip seed; array k is instance k.
    """

    def __init__(self, weights: np.ndarray, preset_name: str = "paper", seed: int = 0):
        from analog_models.config import preset
        from firmware.driver import SyncMacroDriver
        from firmware.model import FastMacroModel
        from firmware.tiling import TiledMatvec
        from macro_spec.params import MacroParams

        params, cfg = MacroParams(), preset(preset_name)
        self.drivers = []
        for k in range(4):
            d = SyncMacroDriver(FastMacroModel(params, cfg, seed=seed, instance=k))
            d.open()
            d.configure(cfg.register_settings(params))
            if preset_name != "ideal":
                d.calibrate(seed=seed + k)
            self.drivers.append(d)
        self.layer = TiledMatvec(self.drivers, weights, raise_on_failure=False)
        if not self.layer.resident or len(self.layer.tiles) != 4:
            raise ValueError(f"conv7 should fill exactly 4 arrays, got {len(self.layer.tiles)} tiles")
        self.timeouts = 0

    def __call__(self, x_pm1: np.ndarray) -> np.ndarray:
        res = self.layer.matvec_sync(x_pm1, allow_timeouts=True)
        self.timeouts += int(res.timeouts.sum())
        return res.dot.astype(np.float32)


def forward(p: dict, windows: np.ndarray, macro: MacroLayer | None = None, batch: int = 1000) -> np.ndarray:
    """Face scores (logit difference face - non-face) of 24 x 24 windows (values 0..1)."""
    out = []
    for s in range(0, len(windows), batch):
        x = normalise(windows[s:s + batch])[..., None]
        n = x.shape[0]
        h = (im2col(x, 0.0).reshape(-1, 9) @ conv_weight_matrix(p["conv1.weight"])).reshape(n, WIN, WIN, -1)
        h = sign(batchnorm(h, p, "conv1"))
        for name, _cin, cout, pool in BINARY_CONVS:
            _, hh, ww, _ = h.shape
            cols = im2col(h, -1).reshape(n * hh * ww, -1)
            if name == MACRO_LAYER and macro is not None:
                d = macro(cols)
            else:
                d = cols.astype(np.float32) @ p[f"{name}.wbin"].astype(np.float32)
            d = d.reshape(n, hh, ww, cout)
            if pool:
                d = maxpool2(d)
            h = sign(batchnorm(d, p, name))
        flat = np.ascontiguousarray(np.transpose(h, (0, 3, 1, 2)).reshape(n, -1)).astype(np.float32)
        h = sign(batchnorm(flat @ p["fc9.wbin"].astype(np.float32), p, "fc9"))
        logits = h.astype(np.float32) @ p["fc10.weight"].T + p["fc10.bias"]
        out.append(logits[:, 1] - logits[:, 0])
    return np.concatenate(out)


def _with_binary(p: dict) -> dict:
    return binary_matrices(p, [name for name, *_ in BINARY_CONVS], "fc9")


def load_weights(path=WEIGHTS_PATH) -> dict:
    """Exported parameters plus ``<layer>.wbin`` ±1 matrices (K, out)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no face-net weights at {path}: run python -m apps.face train")
    with np.load(path) as f:
        return _with_binary({k: f[k] for k in f.files})


def evaluate(p: dict | None = None, backend: str = "macro", seed: int = 0, data_seed: int = 0,
             preset_name: str = "paper") -> dict:
    """Accuracy on the held-out test views, with conv7 in numpy or on the 4 (modelled) arrays."""
    if backend not in ("numpy", "macro"):
        raise ValueError(f"backend must be 'numpy' or 'macro', not {backend!r}")
    p = load_weights() if p is None else p
    ds = make_dataset(data_seed)
    x, y = test_views(ds["test_x"], ds["test_y"])
    t0 = time.time()
    macro = MacroLayer(p[f"{MACRO_LAYER}.wbin"], preset_name, seed) if backend == "macro" else None
    score = forward(p, x, macro)
    pred = (score >= 0).astype(np.int64)
    res = dict(backend=backend, preset=preset_name if macro else None, n=int(len(y)),
               faces=int(y.sum()), accuracy=float((pred == y).mean()),
               face_recall=float(pred[y == 1].mean()), nonface_specificity=float(1 - pred[y == 0].mean()),
               seconds=round(time.time() - t0, 1))
    if macro is not None:
        res.update(timeouts=macro.timeouts, write_failures=macro.layer.write_failures,
                   computes=macro.layer.cost.computes, programmings=macro.layer.cost.programmings)
    return res


# ---------------------------------------------------------------------- training

def _build_torch(noise_sigma: float):
    """The torch face net (same names as the numpy parameters after :func:`apps.vgg8.export`)."""
    return binary_vgg_torch(noise_sigma, 16, BINARY_CONVS, False, "fc9", FC9_IN, FC9_OUT, "fc10", 2)


def train(out: Path, seed: int, epochs: int, lr: float, noise_sigma: float, threads: int) -> dict:
    """Adam + one-cycle schedule on random 24 x 24 crops and flips; faces weighted up to balance."""
    torch = require_torch()
    import torch.nn.functional as F

    from .vgg8 import export
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    rng = np.random.default_rng(seed)
    ds = make_dataset(seed)
    xtr, ytr = ds["train_x"], ds["train_y"]
    xte, yte = test_views(ds["test_x"], ds["test_y"])
    # Faces are ~5 % of the crops: oversample them so every batch sees both classes.
    face_idx = np.flatnonzero(ytr == 1)
    reps = max(1, int(round((ytr == 0).sum() / len(face_idx))))
    idx_all = np.concatenate([np.arange(len(ytr))] + [face_idx] * (reps - 1))
    net = _build_torch(noise_sigma)
    batch = 64
    steps_per_epoch = len(idx_all) // batch
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch, pct_start=0.2)
    t0 = time.time()
    log = []
    for ep in range(epochs):
        net.train()
        perm = rng.permutation(idx_all)
        for s in range(steps_per_epoch):
            idx = perm[s * batch:(s + 1) * batch]
            dy, dx = rng.integers(0, 2, 2)
            win = xtr[idx, dy:dy + WIN, dx:dx + WIN]
            flip = rng.random(len(idx)) < 0.5
            win = np.where(flip[:, None, None], win[:, :, ::-1], win)
            # Brightness/contrast jitter: the detector must not key on exposure.
            win = np.clip(win * rng.uniform(0.7, 1.3, (len(idx), 1, 1)) + rng.uniform(-0.15, 0.15, (len(idx), 1, 1)), 0, 1)
            xb = torch.tensor(normalise(win))[:, None]
            loss = F.cross_entropy(net(xb), torch.tensor(ytr[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            clamp_latent(net)
        net.eval()
        p = _with_binary(export(net))
        acc = float(((forward(p, xte) >= 0) == yte).mean())
        log.append(dict(epoch=ep + 1, loss=float(loss.item()), test_numpy=acc, seconds=round(time.time() - t0, 1)))
        print(json.dumps(log[-1]), flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **export(net))
    meta = dict(command="python -m apps.face train " + " ".join(sys.argv[2:]), seed=seed, epochs=epochs, lr=lr,
                noise_sigma_per_tile=noise_sigma, torch=torch.__version__, train_crops=int(len(ytr)),
                test_views=int(len(yte)), log=log)
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


# ---------------------------------------------------------------------- detection

def detect(p: dict, image: np.ndarray, scales=(0.16, 0.2, 0.25, 0.3), stride: int = 2,
           threshold: float = 0.0, macro: MacroLayer | None = None):
    """Sliding-window detections ``(score, y, x, size)`` in image pixels, after non-max suppression.

    A binary net's score takes few distinct values (many windows tie at the maximum), and a
    real face fires over a patch of neighbouring windows while a false hit is usually isolated.
    So windows are ranked by the mean score over their 5 x 5 neighbourhood of positions (a
    detection density), not by their own score.
    """
    from scipy.ndimage import uniform_filter
    from skimage.transform import rescale
    from skimage.util import view_as_windows
    boxes = []
    for s in scales:
        small = rescale(image, s, anti_aliasing=True)
        win = view_as_windows(small, (WIN, WIN), step=stride)
        gy, gx = win.shape[:2]
        raw = forward(p, win.reshape(-1, WIN, WIN), macro).reshape(gy, gx)
        score = uniform_filter(raw, size=5, mode="constant", cval=float(raw.min()))
        for (iy, ix) in zip(*np.nonzero(score >= threshold)):
            boxes.append((float(score[iy, ix]), iy * stride / s, ix * stride / s, WIN / s))
    boxes.sort(reverse=True)
    keep = []
    for b in boxes:  # greedy NMS on intersection over the smaller box
        if all(_overlap(b, k) < 0.3 for k in keep):
            keep.append(b)
    return keep


def _overlap(a, b) -> float:
    _, ay, ax, asz = a
    _, by, bx, bsz = b
    iy = max(0.0, min(ay + asz, by + bsz) - max(ay, by))
    ix = max(0.0, min(ax + asz, bx + bsz) - max(ax, bx))
    return iy * ix / min(asz * asz, bsz * bsz)


def detection_picture(p: dict, out: Path, top: int = 3, macro: MacroLayer | None = None) -> dict:
    """Run the detector on ``skimage.data.astronaut()`` and save the boxes as a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle
    import skimage.data

    rgb = skimage.data.astronaut()
    t0 = time.time()
    dets = detect(p, _grey("astronaut"), macro=macro)
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.imshow(rgb)
    for k, (score, y, x, sz) in enumerate(dets[:top]):
        ax.add_patch(Rectangle((x, y), sz, sz, fill=False, lw=2.5 if k == 0 else 1.2,
                               ec="lime" if k == 0 else "yellow"))
        ax.text(x, y - 4, f"{score:.1f}", color="lime" if k == 0 else "yellow", fontsize=9)
    ax.set_axis_off()
    where = "conv7 on 4 modelled arrays" if macro is not None else "all layers in numpy"
    ax.set_title(f"binary face detector ({where}): top {min(top, len(dets))} of {len(dets)} after NMS", fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return dict(path=str(out), detections=[[round(v, 1) for v in d] for d in dets[:top]],
                windows_after_nms=len(dets), seconds=round(time.time() - t0, 1))


def main(argv=None) -> int:
    """The command line: ``train``, ``eval`` and ``detect`` (see the module docstring)."""
    ap = OneLineArgumentParser(prog="python -m apps.face", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--out", type=Path, default=WEIGHTS_PATH)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--epochs", type=int, default=30)
    t.add_argument("--lr", type=float, default=3e-3)
    t.add_argument("--noise-sigma", type=float, default=3.5)
    t.add_argument("--threads", type=int, default=1)
    e = sub.add_parser("eval")
    e.add_argument("--weights", type=Path, default=WEIGHTS_PATH)
    e.add_argument("--backend", default="macro", choices=("numpy", "macro"))
    e.add_argument("--seed", type=int, default=0)
    d = sub.add_parser("detect")
    d.add_argument("--weights", type=Path, default=WEIGHTS_PATH)
    d.add_argument("--out", type=Path, default=BUILD_DIR / "astronaut.png")
    a = ap.parse_args(argv)
    if a.cmd == "train":
        train(a.out, a.seed, a.epochs, a.lr, a.noise_sigma, a.threads)
    elif a.cmd == "eval":
        print(json.dumps(evaluate(load_weights(a.weights), a.backend, a.seed)))
    else:
        print(json.dumps(detection_picture(load_weights(a.weights), a.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
