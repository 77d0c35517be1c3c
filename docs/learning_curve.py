"""Learning curves of the shipped models: validation PSNR-Y (Set5) against iterations, and NIQE
(BSD100) where a run tracks it (the GAN), kept across training sessions in `docs/curves/<model>.csv`
and drawn into `docs/images/learning_curves.png`.

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
_NIQE = re.compile(r"^\s+NIQE on \S+: ([\d.]+)\s*$")

Point = tuple[float, float, float | None]  # mean PSNR-Y, mean SSIM-Y, NIQE (None where not tracked)


def parse_log(path: Path) -> dict[int, Point]:
    """{iteration: point} from a train.log's validation tables."""
    points, iteration = {}, None
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if match := _HEAD.search(line):
            iteration = int(match.group(1))
        elif iteration is not None and (match := _MEAN.match(line)):
            points[iteration] = (float(match.group(1)), float(match.group(2)), None)
        elif iteration is not None and iteration in points and (match := _NIQE.match(line)):
            points[iteration] = (*points[iteration][:2], float(match.group(1)))
    return points


def read_csv(path: Path) -> dict[int, Point]:
    if not path.is_file():
        return {}
    with path.open(newline="") as f:
        return {int(r["iteration"]): (float(r["psnr_y"]), float(r["ssim_y"]),
                                      float(r["niqe"]) if r.get("niqe") else None) for r in csv.DictReader(f)}


def write_csv(path: Path, points: dict[int, Point]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    niqe = any(p[2] is not None for p in points.values())
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["iteration", "psnr_y", "ssim_y", *(["niqe"] if niqe else [])])
        for it in sorted(points):
            psnr, ssim, value = points[it]
            writer.writerow([it, f"{psnr:.2f}", f"{ssim:.4f}", *([f"{value:.4f}" if value is not None else ""]
                                                                  if niqe else [])])


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
    for path in sorted(CURVES.glob("*.csv")):
        curves.setdefault(int(re.search(r"_x(\d+)$", path.stem).group(1)), []).append(path)
    scales = sorted(curves, reverse=True)
    all_points = {path.stem: read_csv(path) for paths in curves.values() for path in paths}
    niqe_curves = {name: points for name, points in all_points.items()
                   if any(p[2] is not None for p in points.values())}
    panels = len(scales) + bool(niqe_curves)
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 4), dpi=110, squeeze=False)
    for ax, scale in zip(axes[0], scales):
        for path in curves[scale]:
            points = all_points[path.stem]
            its = sorted(points)
            ax.plot(its, [points[i][0] for i in its], marker=".", label=path.stem)
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
        its = [i for i in sorted(points) if points[i][2] is not None]
        ax.plot(its, [points[i][2] for i in its], marker=".", label=name)
    srresnet = read_metadata(SHIPPED_DIR / "srresnet_x4.safetensors")["scores"]["BSD100"]["niqe"]
    for value, name, color in ((BICUBIC_NIQE_BSD100, "bicubic", "tab:gray"),
                               (srresnet, "srresnet_x4 (shipped)", "tab:orange")):
        ax.axhline(value, color=color, linestyle="--", linewidth=0.8, label=f"{name} ({value:.2f})")
    ax.set_xlabel("iteration")
    ax.set_ylabel("NIQE x4 on BSD100 (lower is better)")
    ax.set_title("x4 GAN: NIQE during training (EMA weights)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


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
