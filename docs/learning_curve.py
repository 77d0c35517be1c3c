"""Learning curves of the shipped models: validation PSNR-Y (Set5) against iterations, and NIQE
(BSD100) where a run tracks it (the GAN), kept across training sessions in `docs/curves/<model>.csv`
and drawn into `docs/images/learning_curves.png`. The real-world models (`*_real_*`) validate on the
degraded BSD100 (PSNR-Y, LPIPS) and RealSRSet (NIQE): their own picture, `learning_curves_real.png`.

A run's `train.log` holds its validation tables; each session merges the new points into the CSV
(one row per iteration, newest wins), so the curve survives the run folder, which is not committed.

    python docs/learning_curve.py --log runs/srresnet_x4/train.log --model srresnet_x4
    python docs/learning_curve.py                      # redraw the picture from the CSVs only
"""

from __future__ import annotations

import argparse
import csv
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
CURVES = HERE / "curves"
PICTURE = HERE / "images" / "learning_curves.png"
REAL_PICTURE = HERE / "images" / "learning_curves_real.png"
_HEAD = re.compile(r"validation at iteration (\d+)")
_MEAN = re.compile(r"^\s+mean\s+([\d.]+)\s+([\d.]+)(?:\s+([\d.]+))?\s*$")
_NIQE = re.compile(r"^\s+NIQE on \S+: ([\d.]+)\s*$")
_TERMS = re.compile(r" INFO iter (\d+) [\d.]+ it/s (.+)$")  # srgan.training.monitor's progress line
COLUMNS = {"psnr_y": "{:.2f}", "ssim_y": "{:.4f}", "lpips": "{:.4f}", "niqe": "{:.4f}"}

Point = dict[str, float]  # the COLUMNS a validation measured (LPIPS and NIQE only where tracked)


def parse_log(path: Path) -> dict[int, Point]:
    """{iteration: point} from a train.log's validation tables."""
    points, iteration = {}, None
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if match := _HEAD.search(line):
            iteration = int(match.group(1))
        elif iteration is not None and (match := _MEAN.match(line)):
            psnr, ssim, lpips = match.groups()
            points[iteration] = {"psnr_y": float(psnr), "ssim_y": float(ssim), **({"lpips": float(lpips)} if lpips else {})}
        elif iteration is not None and iteration in points and (match := _NIQE.match(line)):
            points[iteration]["niqe"] = float(match.group(1))
    return points


def parse_terms(path: Path) -> dict[int, Point]:
    """{iteration: {term: value}} from a train.log's progress lines: the loss terms and D(real) /
    D(fake), each the mean over the `train.log_every` iterations before it."""
    points = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if match := _TERMS.search(line):
            pairs = (pair.split("=", 1) for pair in match.group(2).split())
            points[int(match.group(1))] = {key: float(value) for key, value in pairs}
    return points


def read_csv(path: Path) -> dict[int, Point]:
    if not path.is_file():
        return {}
    with path.open(newline="") as f:
        return {int(r.pop("iteration")): {k: float(v) for k, v in r.items() if v} for r in csv.DictReader(f)}


def write_csv(path: Path, points: dict[int, Point]) -> None:
    """COLUMNS in their order and format, then any other column (training terms) in the order met."""
    path.parent.mkdir(parents=True, exist_ok=True)
    present = list(dict.fromkeys(k for p in points.values() for k in p))
    columns = [k for k in COLUMNS if k in present] + [k for k in present if k not in COLUMNS]
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["iteration", *columns])
        for it in sorted(points):
            writer.writerow([it, *(COLUMNS.get(k, "{:.4g}").format(points[it][k]) if k in points[it] else ""
                                   for k in columns)])


# Reference lines per scale (Set5 PSNR-Y, published): the targets of MODELS.md. Bicubic (28.42 x4,
# 33.66 x2) is left out: that far below the curves it would squash them.
REFERENCES = {
    4: [(29.40, "SRGAN, Ledig et al.", "tab:purple"), (31.42, "VDSR", "tab:red"),
        (32.05, "SRResNet, Ledig et al.", "black")],
    2: [(37.53, "VDSR", "tab:red")],
}
BICUBIC_NIQE_BSD100 = 7.70  # x4, measured with `srgan eval --niqe` (MODELS.md)


def plot(out: Path = PICTURE) -> Path:
    """One panel per scale (the model name ends in _x<scale>), the published targets as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves: dict[int, list[Path]] = {}
    for path in sorted(p for p in CURVES.glob("*.csv") if "_real_" not in p.stem):
        curves.setdefault(int(re.search(r"_x(\d+)$", path.stem).group(1)), []).append(path)
    scales = sorted(curves, reverse=True)
    all_points = {path.stem: read_csv(path) for paths in curves.values() for path in paths}
    niqe_curves = {name: points for name, points in all_points.items() if any("niqe" in p for p in points.values())}
    panels = len(scales) + bool(niqe_curves)
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 4), dpi=110, squeeze=False)
    for ax, scale in zip(axes[0], scales):
        for path in curves[scale]:
            points = all_points[path.stem]
            its = sorted(points)
            ax.plot(its, [points[i]["psnr_y"] for i in its], marker=".", label=path.stem)
        for value, name, color in REFERENCES.get(scale, []):
            ax.axhline(value, color=color, linestyle="--", linewidth=0.8, label=f"{name} ({value:.2f})")
        ax.set_xlabel("iteration")
        ax.set_ylabel(f"Set5 PSNR-Y x{scale} (dB)")
        ax.set_title(f"x{scale}: validation during training (EMA weights)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if niqe_curves:
        _plot_niqe(axes[0][-1], niqe_curves)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    return out


def _plot_niqe(ax, curves: dict[str, dict[int, Point]]) -> None:
    """NIQE on BSD100 against iterations, with the two values srgan_x4 must beat (issue 7)."""
    from srgan.models.weights import SHIPPED_DIR, read_metadata

    for name, points in curves.items():
        its = [i for i in sorted(points) if "niqe" in points[i]]
        ax.plot(its, [points[i]["niqe"] for i in its], marker=".", label=name)
    srresnet = read_metadata(SHIPPED_DIR / "srresnet_x4.safetensors")["scores"]["BSD100"]["niqe"]
    for value, name, color in ((BICUBIC_NIQE_BSD100, "bicubic", "tab:gray"),
                               (srresnet, "srresnet_x4 (shipped)", "tab:orange")):
        ax.axhline(value, color=color, linestyle="--", linewidth=0.8, label=f"{name} ({value:.2f})")
    ax.set_xlabel("iteration")
    ax.set_ylabel("NIQE x4 on BSD100 (lower is better)")
    ax.set_title("x4 GAN: NIQE during training (EMA weights)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


# Where the shipped bicubic-trained models stand under the real-world validation (MODELS.md), and
# the targets: LPIPS at least 25% below srgan_x4's, NIQE on RealSRSet below srgan_x4's.
REAL_REFERENCES = {
    "psnr_y": ("degraded BSD100 PSNR-Y (dB)", [(23.08, "bicubic", "tab:gray"), (22.90, "srgan_x4", "tab:orange")]),
    "lpips": ("degraded BSD100 LPIPS (lower is better)",
              [(0.8414, "bicubic", "tab:gray"), (0.7410, "srgan_x4", "tab:orange"), (0.556, "target", "black")]),
    "niqe": ("RealSRSet NIQE (lower is better)", [(7.81, "bicubic", "tab:gray"), (4.19, "srgan_x4 = target", "black")]),
}


def plot_real(out: Path = REAL_PICTURE) -> Path | None:
    """The real-world models: one panel per measure they track, the baselines and targets as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = {p.stem: read_csv(p) for p in sorted(CURVES.glob("*_real_*.csv"))}
    measures = [k for k in REAL_REFERENCES if any(k in p for points in curves.values() for p in points.values())]
    if not measures:
        return None
    fig, axes = plt.subplots(1, len(measures), figsize=(6 * len(measures), 4), dpi=110, squeeze=False)
    for ax, key in zip(axes[0], measures):
        label, references = REAL_REFERENCES[key]
        for name, points in curves.items():
            its = [i for i in sorted(points) if key in points[i]]
            if its:
                ax.plot(its, [points[i][key] for i in its], marker=".", label=name)
        for value, name, color in references:
            ax.axhline(value, color=color, linestyle="--", linewidth=0.8, label=f"{name} ({value:g})")
        ax.set_xlabel("iteration")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("x4 real-world models: validation during training (EMA weights)")
    fig.tight_layout()
    fig.savefig(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log", type=Path, help="a run's train.log to merge")
    parser.add_argument("--model", help="curve name (docs/curves/NAME.csv)")
    parser.add_argument("--offset", type=int, default=0, help="iterations done before this log's run")
    args = parser.parse_args()
    if args.log:
        if not args.model:
            parser.error("--log needs --model")
        path = CURVES / f"{args.model}.csv"
        points = read_csv(path)
        points.update({it + args.offset: v for it, v in parse_log(args.log).items()})
        write_csv(path, points)
        print(f"{path}: {len(points)} points")
    print(plot())
    if (real := plot_real()) is not None:
        print(real)


if __name__ == "__main__":
    main()
