"""Learning curves of the shipped models: validation PSNR-Y (Set5) against iterations, kept across
training sessions in `docs/curves/<model>.csv` and drawn into `docs/images/learning_curves.png`.

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
_HEAD = re.compile(r"validation at iteration (\d+)")
_MEAN = re.compile(r"^\s+mean\s+([\d.]+)\s+([\d.]+)\s*$")


def parse_log(path: Path) -> dict[int, tuple[float, float]]:
    """{iteration: (mean PSNR-Y, mean SSIM-Y)} from a train.log."""
    points, iteration = {}, None
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if match := _HEAD.search(line):
            iteration = int(match.group(1))
        elif iteration is not None and (match := _MEAN.match(line)):
            points[iteration] = (float(match.group(1)), float(match.group(2)))
            iteration = None
    return points


def read_csv(path: Path) -> dict[int, tuple[float, float]]:
    if not path.is_file():
        return {}
    with path.open(newline="") as f:
        return {int(r["iteration"]): (float(r["psnr_y"]), float(r["ssim_y"])) for r in csv.DictReader(f)}


def write_csv(path: Path, points: dict[int, tuple[float, float]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["iteration", "psnr_y", "ssim_y"])
        for it in sorted(points):
            writer.writerow([it, f"{points[it][0]:.2f}", f"{points[it][1]:.4f}"])


# Reference lines per scale (Set5 PSNR-Y, published): the targets of MODELS.md. Bicubic (28.42 x4,
# 33.66 x2) is left out: that far below the curves it would squash them.
REFERENCES = {
    4: [(29.40, "SRGAN, Ledig et al.", "tab:purple"), (31.42, "VDSR", "tab:red"),
        (32.05, "SRResNet, Ledig et al.", "black")],
    2: [(37.53, "VDSR", "tab:red")],
}


def plot(out: Path = PICTURE) -> Path:
    """One panel per scale (the model name ends in _x<scale>), the published targets as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves: dict[int, list[Path]] = {}
    for path in sorted(CURVES.glob("*.csv")):
        curves.setdefault(int(re.search(r"_x(\d+)$", path.stem).group(1)), []).append(path)
    scales = sorted(curves, reverse=True)
    fig, axes = plt.subplots(1, len(scales), figsize=(6 * len(scales), 4), dpi=110, squeeze=False)
    for ax, scale in zip(axes[0], scales):
        for path in curves[scale]:
            points = read_csv(path)
            its = sorted(points)
            ax.plot(its, [points[i][0] for i in its], marker=".", label=path.stem)
        for value, name, color in REFERENCES.get(scale, []):
            ax.axhline(value, color=color, linestyle="--", linewidth=0.8, label=f"{name} ({value:.2f})")
        ax.set_xlabel("iteration")
        ax.set_ylabel(f"Set5 PSNR-Y x{scale} (dB)")
        ax.set_title(f"x{scale}: validation during training (EMA weights)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
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


if __name__ == "__main__":
    main()
