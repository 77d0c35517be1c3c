"""Evaluation outputs: results.csv (one row per image and model, then the means), results.json
(protocol, per-dataset means and per-image rows) and report.html with side-by-side zoomed crops
saved as PNG files next to it. Every file is written atomically; a report written again into the
same folder replaces the files of the earlier one."""

from __future__ import annotations

import csv
import html
import json
import math
import re
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from srgan.evaluation.runner import COLUMNS, CropPanel, EvalResults, format_value
from srgan.files import atomic_write, make_folder

ZOOM_WIDTH = 256  # on-screen size of every tile: small windows enlarged with nearest neighbour


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 6)


def _write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"), overwrite=True)


_FIELD = {"psnr": "psnr_y", "ssim": "ssim_y"}  # file column names: the classic metrics say they are on Y
_STATS = ("width", "height", "mean", "std")


def _fields(results: EvalResults) -> list[tuple[str, str]]:
    """(key of a row or summary, column name in the files), in order."""
    stats = _STATS if results.mode == "no-reference" else ()
    return [(m, _FIELD.get(m, m)) for m in results.metrics] + [(k, k) for k in stats]


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:.6f}"


def write_csv(results: EvalResults, path: Path) -> None:
    fields = _fields(results)
    rows = [["dataset", "model", "image", *(name for _, name in fields), "seconds"]]
    for r in results.images:
        values = {**r.scores, **r.stats}
        rows.append([r.dataset, r.model, r.image, *(_cell(values.get(k)) for k, _ in fields), f"{r.seconds:.6f}"])
    for ds in results.datasets:
        for model in results.models:
            s = results.summary(ds, model)
            if s["images"]:
                rows.append([ds, model, "MEAN", *(_cell(s.get(k)) for k, _ in fields), _cell(s["seconds_per_image"])])

    def write(tmp: str) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(rows)

    atomic_write(path, write, overwrite=True)


def to_dict(results: EvalResults) -> dict:
    fields = _fields(results)
    return {
        "protocol": results.protocol,
        "mode": results.mode,
        "scale": results.scale,
        "crop": results.crop,
        "metrics": results.metrics,
        "models": results.models,
        "datasets": {ds: {m: {k: _num(v) if isinstance(v, float) else v for k, v in results.summary(ds, m).items()}
                          for m in results.models if results.summary(ds, m)["images"]}
                     for ds in results.datasets},
        "images": [{"dataset": r.dataset, "model": r.model, "image": r.image,
                    **{name: _num({**r.scores, **r.stats}.get(k)) for k, name in fields}, "seconds": _num(r.seconds)}
                   for r in results.images],
        "skipped": [{"image": image, "reason": reason} for image, reason in results.skipped],
    }


def write_json(results: EvalResults, path: Path) -> None:
    _write_text(path, json.dumps(to_dict(results), indent=2) + "\n")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "x"


def _save_tile(tile: torch.Tensor, path: Path) -> None:
    arr = tile.permute(1, 2, 0).numpy()
    im = Image.fromarray(np.ascontiguousarray(arr[..., 0] if arr.shape[-1] == 1 else arr))
    factor = max(1, ZOOM_WIDTH // im.width)
    im = im.resize((im.width * factor, im.height * factor), Image.Resampling.NEAREST)
    atomic_write(path, lambda tmp: im.save(tmp, format="PNG"), overwrite=True)


def _caption(metric: str, value: float) -> str:
    if metric == "psnr":
        return f"{value:.2f} dB"
    return f"{metric.upper()} {value:.4f}" if metric != "ssim" else f"{value:.4f}"


def _panel_html(panel: CropPanel, out_dir: Path, results: EvalResults) -> str:
    cells = []
    for label, tile in panel.tiles.items():
        name = f"crop_{_slug(panel.dataset)}_{_slug(Path(panel.image).stem)}_{_slug(label)}.png"
        _save_tile(tile, out_dir / name)
        score = ""
        if label in results.models:
            r = next(r for r in results.images
                     if r.dataset == panel.dataset and r.image == panel.image and r.model == label)
            score = "<br>" + " / ".join(_caption(m, v) for m, v in r.scores.items() if v is not None)
        cells.append(f'<figure><img src="{html.escape(name)}" alt="{html.escape(label)}" width="{ZOOM_WIDTH}">'
                     f"<figcaption>{html.escape(label)}{score}</figcaption></figure>")
    top, left, h, w = panel.box
    return (f"<h3>{html.escape(panel.dataset)} / {html.escape(panel.image)} "
            f"<small>(HR window {w}x{h} at x={left}, y={top})</small></h3>\n<div class=row>{''.join(cells)}</div>")


def _table_html(results: EvalResults, ds: str) -> str:
    columns = results.columns
    head = "<tr><th>model</th>" + "".join(f"<th>{html.escape(COLUMNS[c])}</th>" for c in columns) \
        + "<th>s/image</th><th>images</th></tr>"
    body = []
    for m in results.models:
        s = results.summary(ds, m)
        if s["images"]:
            cells = "".join(f"<td>{format_value(s[c])}</td>" for c in columns)
            body.append(f"<tr><td>{html.escape(m)}</td>{cells}<td>{s['seconds_per_image']:.4f}</td>"
                        f"<td>{s['images']}</td></tr>")
    return f"<h2>{html.escape(ds)}</h2><table>{head}{''.join(body)}</table>"


def write_html(results: EvalResults, path: Path) -> None:
    out_dir = path.parent
    parts = [f"<h1>srgan eval x{results.scale}</h1>", f"<p>{html.escape(results.protocol)}</p>"]
    for ds in results.datasets:
        parts.append(_table_html(results, ds))
        parts += [_panel_html(p, out_dir, results) for p in results.crops if p.dataset == ds]
    style = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
             "padding:4px 8px;text-align:right}.row{display:flex;flex-wrap:wrap;gap:8px}figure{margin:0}"
             "img{image-rendering:pixelated}figcaption{text-align:center;font-size:90%}")
    doc = (f"<!doctype html>\n<html><head><meta charset=utf-8><title>srgan eval x{results.scale}</title>"
           f"<style>{style}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")
    _write_text(path, doc)


def write_report(results: EvalResults, out_dir: str | Path) -> dict[str, Path]:
    """Write results.csv, results.json, report.html (+ crop PNGs) into out_dir, replacing those of an
    earlier report there; returns their paths."""
    out = make_folder(out_dir)
    paths = {"csv": out / "results.csv", "json": out / "results.json", "html": out / "report.html"}
    write_csv(results, paths["csv"])
    write_json(results, paths["json"])
    write_html(results, paths["html"])
    return paths
