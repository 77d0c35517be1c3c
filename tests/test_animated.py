"""Animated WebP, which the FFmpeg in PyAV's wheels cannot decode: read and written by Pillow, frame for
frame, durations, loop count and transparency kept; a still WebP stays an image."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import srgan
from srgan import api
from srgan.cli import main

DURATIONS = [40, 80, 120]


@pytest.fixture
def opts(tiny_weights):
    return srgan.UpscaleOptions(model=tiny_weights, device="cpu", precision="fp32", tile=16)


def _webp(path: Path, frames: int = 3, *, loop: int = 3) -> Path:
    """`frames` random 16x12 RGBA frames: a corner transparent in the first, half transparent in the others."""
    rng = np.random.default_rng(len(path.name))
    images = []
    for i in range(frames):
        pixels = rng.integers(0, 256, (12, 16, 4), dtype=np.uint8)
        pixels[..., 3] = 255
        pixels[:5, :6, 3] = 0 if i == 0 else 128
        images.append(Image.fromarray(pixels, "RGBA"))
    images[0].save(path, save_all=True, append_images=images[1:], duration=DURATIONS[:frames], loop=loop,
                   lossless=True)
    return path


def _decoded(path: Path) -> tuple[list[Image.Image], list[int], int]:
    """(RGBA frames, durations in ms, loop count), as Pillow reads them."""
    frames, durations = [], []
    with Image.open(path) as im:
        for index in range(im.n_frames):
            im.seek(index)
            frames.append(im.convert("RGBA"))
            durations.append(im.info["duration"])
        return frames, durations, im.info.get("loop", 0)


def _same_visible_pixels(got: Image.Image, want: Image.Image) -> bool:
    """Equal alpha, and equal colour wherever a pixel is visible (lossless WebP keeps no other colour)."""
    a, b = np.asarray(got), np.asarray(want)
    visible = b[..., 3] > 0
    return a.shape == b.shape and np.array_equal(a[..., 3], b[..., 3]) and np.array_equal(a[visible], b[visible])


def test_animated_webp_becomes_an_animated_webp_frame_for_frame_without_pyav(tmp_path, opts, monkeypatch):
    src = _webp(tmp_path / "anim.webp")
    monkeypatch.setitem(sys.modules, "av", None)  # Pillow alone reads and writes it
    assert api.is_video_job([src])
    summary = srgan.upscale_video(src, options=opts)
    out = tmp_path / "anim_x4.webp"
    assert [(r.target, r.frames) for r in summary.done] == [(out, 3)]
    frames, durations, loop = _decoded(out)
    assert [f.size for f in frames] == [(64, 48)] * 3 and durations == DURATIONS and loop == 3
    expected = [srgan.upscale(f, options=opts) for f in _decoded(src)[0]]
    assert all(_same_visible_pixels(a, b) for a, b in zip(frames, expected, strict=True))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["anim.webp", "anim_x4.webp"]  # no temporary file


def test_cli_quality_refusals_and_a_still_webp(tmp_path, tiny_weights, capsys):
    src = _webp(tmp_path / "anim.webp", loop=0)
    common = ["--model", tiny_weights, "--device", "cpu", "--precision", "fp32"]
    assert main(["upscale", str(src), "-o", str(tmp_path / "lossy.webp"), "--quality", "60", "--frames", "2",
                 *common]) == 0
    frames, durations, loop = _decoded(tmp_path / "lossy.webp")
    assert len(frames) == 2 and durations == DURATIONS[:2] and loop == 0
    assert main(["upscale", str(src), "-o", str(src), *common]) == 2  # never the input
    assert main(["upscale", str(src), "-o", str(tmp_path / "lossy.webp"), *common]) == 2  # nor an existing file
    assert main(["upscale", str(src), "--codec", "h264", *common]) == 2
    err = capsys.readouterr().err
    assert "would overwrite the input" in err and "already exists" in err and "takes no --codec" in err

    still = tmp_path / "still.webp"
    Image.fromarray(np.full((12, 16, 3), 90, np.uint8)).save(still, lossless=True)
    assert not api.is_video_job([still])  # one frame: the image path, as before
    assert main(["upscale", str(still), *common]) == 0
    assert "upscaled 1 image(s)" in capsys.readouterr().out
    with Image.open(tmp_path / "still_x4.webp") as im:
        assert im.size == (64, 48) and not getattr(im, "is_animated", False)


def test_animated_webp_to_apng_and_gif_to_webp(tmp_path, opts):
    """Pillow's frames into FFmpeg's encoder, and PyAV's into Pillow's writer: the same pipeline."""
    pytest.importorskip("av")
    src = _webp(tmp_path / "anim.webp")
    srgan.upscale_video(src, tmp_path / "anim.png", options=opts)
    frames, durations, _ = _decoded(tmp_path / "anim.png")
    # every frame starts at its time; FFmpeg's APNG muxer gives the last frame the delay before it, as for a GIF
    assert len(frames) == 3 and frames[0].size == (64, 48) and durations[:2] == DURATIONS[:2]

    gif = tmp_path / "anim.gif"
    _decoded(src)[0][0].save(gif, save_all=True, append_images=_decoded(src)[0][1:], duration=DURATIONS, loop=0)
    srgan.upscale_video(gif, tmp_path / "from_gif.webp", options=opts)
    frames, durations, _ = _decoded(tmp_path / "from_gif.webp")
    assert len(frames) == 3 and frames[0].size == (64, 48) and durations == DURATIONS
