"""Speed and memory of `srgan upscale clip.mp4` (issue 26): what the video path costs on top of the
model, and whether its memory stays flat over a long clip.

    python benchmarks/video_speed.py                      # shipped srresnet_x4, 8 frames of 640x360 x4
    python benchmarks/video_speed.py --frames 30 --long-frames 1000
    python benchmarks/video_speed.py --preset realesr_animevideov3   # an untrained preset: its speed only

Speed: a 640x360 H.264 clip (a pan over scikit-image's astronaut, no download) is upscaled x4 three
ways, all in this process with the same model, precision and tile grid:
  model   - the frames, decoded beforehand, through the engine one after the other (the model's own time);
  images  - the same frames as PNG files through `srgan.upscale_files` (read / write overlapped);
  video   - `srgan.upscale_video` end to end: decode, engine, H.264 encode of the 2560x1440 frames,
            join with the sound, all overlapped.
The video path should add at most 10% to the model's own time (video / model <= 1.10).

Pipeline: the same clip through `srgan.upscale_video` with a model that costs nothing (nearest x4):
the video path's own time per frame (decode, RGB conversions, H.264 encode of 2560x1440, join),
which the overlap hides behind a model that leaves the cores some room.

Memory: a `--long-frames` clip (default 1,000 frames, 160x90) through a tiny random model, the
process's resident memory sampled every 20 ms: the peak in the first 10% of the run against the
peak over the whole run (flat: a ratio near 1).
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image
from skimage import data

import srgan
from srgan.api import get_runner
from srgan.hardware import describe_cpu
from srgan.imaging.video import frame_to_image
from srgan.inference.upscale import upscale_loaded
from srgan.inference.video import fixed_tile, read_info

TARGET = 1.10


def make_clip(path: Path, frames: int, size: tuple[int, int], rate: int = 25) -> Path:
    """A pan over the astronaut (scaled to twice the frame height) with a 440 Hz tone."""
    width, height = size
    side = 2 * max(width, height)
    picture = np.asarray(Image.fromarray(data.astronaut()).resize((side, side), Image.BICUBIC))
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=rate, options={"crf": "18"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        sound = out.add_stream("aac", rate=48000, layout="mono")
        for i in range(frames):
            x = (i * 7) % (side - width)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(picture[100:100 + height, x:x + width]),
                                               format="rgb24")
            frame.pts = i
            out.mux(video.encode(frame.reformat(format="yuv420p")))
        out.mux(video.encode(None))
        for start in range(0, frames * 48000 // rate, 1024):
            wave = 0.2 * np.sin(2 * np.pi * 440 * np.arange(start, start + 1024) / 48000)
            chunk = av.AudioFrame.from_ndarray(wave.astype(np.float32)[None], format="fltp", layout="mono")
            chunk.sample_rate, chunk.pts = 48000, start
            out.mux(sound.encode(chunk))
        out.mux(sound.encode(None))
    return path


def speed(folder: Path, args: argparse.Namespace) -> None:
    clip = make_clip(folder / "clip.mp4", args.frames, (640, 360))
    model = args.model
    if args.preset:  # random weights time the same as trained ones
        model = folder / f"{args.preset}.safetensors"
        srgan.save_model(srgan.create_model(args.preset), model)
    options = srgan.UpscaleOptions(model=model, device="cpu", precision=args.precision)
    runner = get_runner(options)
    info = read_info(clip)
    options = fixed_tile(options, runner, info)  # the grid the video path uses, for all three
    with av.open(str(clip)) as container:
        images = [frame_to_image(f, info) for f in container.decode(video=0)]
    upscale_loaded(images[0], runner, options)  # warm-up: oneDNN's first call plans its kernels
    start = time.perf_counter()
    for image in images:
        upscale_loaded(image, runner, options)
    alone = time.perf_counter() - start
    pngs = folder / "frames"
    pngs.mkdir()
    for i, image in enumerate(images):
        Image.fromarray(image.pixels.mul(255).round().byte().permute(1, 2, 0).numpy()).save(pngs / f"{i:05d}.png")
    start = time.perf_counter()
    srgan.upscale_files([str(pngs)], folder / "frames_x4", options=options)
    as_images = time.perf_counter() - start
    start = time.perf_counter()
    srgan.upscale_video(clip, folder / "clip_x4.mp4", options=options)
    video = time.perf_counter() - start
    n = len(images)
    print(f"{n} frames 640x360 -> 2560x1440, {args.preset or args.model} {args.precision}, tile {options.tile}")
    for name, seconds in (("model", alone), ("images", as_images), ("video", video)):
        print(f"  {name:7s} {seconds:7.1f} s  {n / seconds:6.3f} frames/s  {seconds / alone:5.3f} x model")
    verdict = "PASS" if video / alone <= TARGET else "FAIL"
    print(f"video / model = {video / alone:.3f} (target <= {TARGET:.2f}): {verdict}")


class Nearest(torch.nn.Module):
    """x4 by pixel repetition: a model that costs (almost) nothing, to time the path around it."""

    scale = 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.interpolate(x, scale_factor=4, mode="nearest")

    def context(self) -> int:
        return 0


def pipeline(folder: Path, frames: int) -> None:
    clip = make_clip(folder / "pipeline.mp4", frames, (640, 360))
    options = srgan.UpscaleOptions(model=Nearest(), device="cpu", precision="fp32", tile=None)
    start = time.perf_counter()
    srgan.upscale_video(clip, folder / "pipeline_x4.mp4", options=options)
    seconds = time.perf_counter() - start
    print(f"pipeline alone (nearest x4, no model): {frames} frames in {seconds:.1f} s, "
          f"{seconds / frames:.2f} s per frame ({frames / seconds:.2f} frames/s)")


def memory(folder: Path, frames: int) -> None:
    clip = make_clip(folder / "long.mp4", frames, (160, 90))
    torch.manual_seed(0)
    tiny = srgan.create_model("srresnet_x4", blocks=1, width=8)
    samples: list[tuple[float, int]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            rss = int(Path("/proc/self/statm").read_text().split()[1]) * 4096
            samples.append((time.perf_counter(), rss))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    start = time.perf_counter()
    sampler.start()
    srgan.upscale_video(clip, folder / "long_x4.mp4", options=srgan.UpscaleOptions(model=tiny, device="cpu",
                                                                                    precision="fp32"))
    stop.set()
    sampler.join()
    end = time.perf_counter()
    early = max(rss for t, rss in samples if t <= start + 0.1 * (end - start))
    peak = max(rss for _, rss in samples)
    print(f"{frames} frames 160x90 -> 640x360, tiny model: {end - start:.1f} s ({frames / (end - start):.1f} "
          f"frames/s); peak RSS first 10% {early / 2**20:.0f} MiB, whole run {peak / 2**20:.0f} MiB "
          f"(ratio {peak / early:.3f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="srresnet_x4", help="shipped name or weights file")
    parser.add_argument("--preset", help="time an untrained preset instead of --model (e.g. realesr_animevideov3)")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "auto"))
    parser.add_argument("--frames", type=int, default=8, help="frames of the 640x360 clip (0: skip)")
    parser.add_argument("--pipeline-frames", type=int, default=24, help="frames of the pipeline run (0: skip)")
    parser.add_argument("--long-frames", type=int, default=1000, help="frames of the memory clip (0: skip)")
    args = parser.parse_args()
    print(describe_cpu())
    with tempfile.TemporaryDirectory(prefix="srgan-video-bench-") as tmp:
        if args.frames:
            speed(Path(tmp), args)
        if args.pipeline_frames:
            pipeline(Path(tmp), args.pipeline_frames)
        if args.long_frames:
            memory(Path(tmp), args.long_frames)


if __name__ == "__main__":
    main()
