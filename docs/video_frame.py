"""Render the README's video picture: one frame of a small clip, bicubic x4 next to the same frame
of `srgan upscale clip.mp4` (decoded back from the H.264 output, so codec loss is in the picture).

The clip is a 160x96 pan over scikit-image's astronaut, 24 frames with a tone, made here with PyAV
(no download); it is upscaled with the shipped srgan_x4 through `srgan.upscale_video`, fp32 on CPU.

    python docs/video_frame.py                       # writes docs/images/video_x4.png
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw

import srgan

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "benchmarks"))
from video_speed import make_clip  # the benchmark's clip, smaller

FRAME = 12


def decoded_frame(path: Path, index: int) -> np.ndarray:
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == index:
                return frame.to_ndarray(format="rgb24")
    raise SystemExit(f"{path} has fewer than {index + 1} frames")


def labelled(array: np.ndarray, label: str) -> Image.Image:
    picture = Image.fromarray(array)
    framed = Image.new("RGB", (picture.width, picture.height + 16), "white")
    framed.paste(picture, (0, 16))
    ImageDraw.Draw(framed).text((4, 2), label, fill="black")
    return framed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="srgan_x4")
    parser.add_argument("--out", type=Path, default=HERE / "images" / "video_x4.png")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="srgan-video-doc-") as tmp:
        clip = make_clip(Path(tmp) / "clip.mp4", 24, (160, 96))
        srgan.upscale_video(clip, Path(tmp) / "clip_x4.mp4",
                            options=srgan.UpscaleOptions(model=args.model, device="cpu", precision="fp32"))
        low = decoded_frame(clip, FRAME)
        high = decoded_frame(Path(tmp) / "clip_x4.mp4", FRAME)
    bicubic = np.asarray(Image.fromarray(low).resize((high.shape[1], high.shape[0]), Image.BICUBIC))
    left, right = labelled(bicubic, f"bicubic x4, frame {FRAME}"), labelled(high, f"{args.model}, same frame (H.264 crf 18)")
    sheet = Image.new("RGB", (left.width + right.width + 8, left.height), "white")
    sheet.paste(left, (0, 0))
    sheet.paste(right, (left.width + 8, 0))
    sheet.save(args.out, optimize=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
