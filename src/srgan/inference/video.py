"""Upscale a video file: the video frame source, the engine, the segment sink, the join.

Data flow: decode (a thread) -> `upscale_loaded` with the job's `UpscaleOptions`, exactly as for an
image -> encode into segments (a thread) -> join with the input's sound by stream copy, written
atomically under the final name. Memory is flat: at most a few frames are in flight and nothing is
written to disk but the encoded segments.

Decoding is PyAV's, except for animated WebP, which its FFmpeg cannot decode: Pillow's
(`srgan.imaging.animated_webp`), with the same frame selection. A .webp output is an animated WebP
written by Pillow in one piece at the end (`srgan.inference.webp_sink`): lossless unless
`--quality`, the durations and a WebP input's loop count kept, no sound, no segments.

- The tile grid is fixed once per video (`tile="auto"` is resolved on the first frame), so every
  frame is cut the same way: a still scene gives identical frames, and blended tiles (models
  without a bounded receptive field) blend identically, without flicker.
- Resume: the segments live in `.NAME.srgan-parts/` beside the output with a `job.json` of
  everything that decides their content (input file, model, options, encoder, selection). A rerun
  of the same command keeps the finished segments; a different one starts over. Ctrl-C / SIGTERM
  leave no output under the final name, only the finished segments for the next run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import io
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from srgan.errors import SrganError, one_line
from srgan.files import atomic_write, make_folder
from srgan.imaging.animated_webp import is_webp, webp_frames, webp_info
from srgan.imaging.io import LoadedImage
from srgan.imaging.video import (
    ALPHA_FORMATS,
    CODECS,
    VideoInfo,
    container_format,
    frame_to_image,
    open_video,
    probe,
    require_av,
)
from srgan.inference.cache import Runner
from srgan.inference.frames import Frame, run_frames
from srgan.inference.options import UpscaleOptions
from srgan.inference.segments import SEGMENT_FORMAT, Encoding, SegmentWriter, finished_segments, join_segments
from srgan.inference.tiling import FEATHER_PAD, auto_tile
from srgan.inference.upscale import upscale_loaded
from srgan.inference.webp_sink import WebpWriter

log = logging.getLogger(__name__)

Decoded = Iterator[tuple[int | None, int | None, Callable[[], LoadedImage]]]
"""A decoder's frames in order: pts, duration (in the stream's time base) and a callable converting the
frame to an image, called only for the frames kept, before the next one is taken."""
_GLOBAL_HEADER = 0x40  # AVFMT_GLOBALHEADER: the container keeps codec headers out of band


@dataclass(frozen=True)
class VideoOptions:
    """How to encode and what to take. codec: h264 | h265 | vp9 | av1 | ffv1 (lossless RGB) | apng;
    None: h264, or what the container holds instead (vp9 for WebM, apng for .png).
    crf / preset: the encoder's quality and speed (None: the codec's default). pix_fmt: None picks
    the codec's 8-bit or, for sources of more than 8 bits, high-bit-depth format. start / end:
    seconds of the input; frames: at most this many. segment_frames: frames per resumable segment."""

    codec: str | None = None
    crf: int | None = None
    preset: str | None = None
    pix_fmt: str | None = None
    start: float | None = None
    end: float | None = None
    frames: int | None = None
    segment_frames: int = 240

    def __post_init__(self) -> None:
        if self.codec is not None and self.codec not in CODECS:
            raise SrganError(f"codec must be one of {', '.join(CODECS)}, got {self.codec!r}")
        for name in ("crf", "frames", "segment_frames"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0
                                      or (value == 0 and name != "crf")):
                raise SrganError(f"{name} must be a whole number >= {0 if name == 'crf' else 1}, got {value!r}")
        for name in ("start", "end"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not math.isfinite(value)):
                raise SrganError(f"{name} must be a number of seconds, got {value!r}")
        if self.start is not None and self.start < 0:
            raise SrganError(f"start must be 0 or more seconds, got {self.start:g}")
        if self.end is not None and self.end <= (self.start or 0):
            raise SrganError(f"end ({self.end:g} s) must be after start ({self.start or 0:g} s)")
        codec = CODECS.get(self.codec)
        if codec is None:  # chosen with the container (`for_container`), checked then
            return
        if codec.crf is None and (self.crf is not None or self.preset is not None):
            raise SrganError(f"codec {self.codec} is lossless: --crf and --preset do not apply")
        if self.preset is not None and self.preset not in codec.presets:
            raise SrganError(f"codec {self.codec} has no presets" if not codec.presets else
                             f"preset for {self.codec} must be one of {', '.join(codec.presets)}, got {self.preset!r}")

    def for_container(self, fmt: str) -> VideoOptions:
        """The default codec made concrete: the one the container can hold."""
        if self.codec is not None:
            return self
        return dataclasses.replace(self, codec={"webm": "vp9", "apng": "apng"}.get(fmt, "h264"))

    def encoding(self, info: VideoInfo, width: int, height: int, fmt: str) -> Encoding:
        """The segments' encoder for this input; refuses what this FFmpeg cannot do."""
        av = require_av()
        codec = CODECS[self.codec]
        try:
            formats = {f.name for f in av.Codec(codec.encoder, "w").video_formats or ()}
        except av.error.FFmpegError as exc:
            raise SrganError(f"codec {self.codec}: this FFmpeg has no {codec.encoder} encoder") from exc
        pix_fmt = self.pix_fmt or (codec.pix_fmt_high if info.bit_depth == 16 and codec.pix_fmt_high else codec.pix_fmt)
        if info.alpha and not self.pix_fmt:
            pix_fmt = ALPHA_FORMATS.get(pix_fmt, pix_fmt)
        if info.alpha and "a" not in pix_fmt.removeprefix("yuv").replace("gray", ""):
            log.warning("%s (%s) has no transparency: transparent pixels are written black", self.codec, pix_fmt)
        if pix_fmt not in formats:
            raise SrganError(f"pixel format {pix_fmt} is not one {codec.encoder} writes ({', '.join(sorted(formats))})")
        if info.bit_depth == 16 and not self.pix_fmt and pix_fmt == codec.pix_fmt:
            log.warning("%s writes 8 bits here: the 10-bit source is reduced to 8 bits (use h264, h265, av1 or ffv1 "
                        "to keep it)", self.codec)
        options = {} if codec.crf is None else {"crf": str(self.crf if self.crf is not None else codec.crf)}
        if codec.preset is not None:
            options["preset"] = self.preset or codec.preset
        if self.codec == "h265":
            options["x265-params"] = "log-level=error"
        if self.codec == "av1":
            os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its whole configuration otherwise: errors only
        if self.codec == "vp9":
            options["b"] = "0"  # constant quality: crf alone
        return Encoding(codec.encoder, pix_fmt, options, width - width % 2, height - height % 2,
                        global_header=bool(av.format.ContainerFormat(fmt, "w").flags & _GLOBAL_HEADER))


@dataclass
class VideoResult:
    target: Path
    frames: int  # frames in the output
    upscaled: int  # of them upscaled by this run (the rest were in finished segments)
    seconds: float


def upscale_video_file(source: Path, target: Path, runner: Runner, options: UpscaleOptions, video: VideoOptions, *,
                       overwrite: bool = False, progress: bool = False) -> VideoResult:
    """Upscale one video file to `target` (see the module docstring)."""
    started = time.perf_counter()
    if target.exists() and not overwrite:
        raise SrganError(f"{target} already exists: pass --overwrite to replace it")
    if target.suffix.lower() == ".webp":
        return _upscale_to_webp(source, target, runner, options, video, overwrite=overwrite, progress=progress)
    fmt = container_format(target)
    video = video.for_container(fmt)
    with _ffmpeg_errors(source):
        info = read_info(source)
        encoding = video.encoding(info, *output_size(info, runner, options), fmt)
        _check_container(fmt, encoding, target)
        _check_encoder(encoding, info)
        options = fixed_tile(options, runner, info)
        parts = resume_folder(target, _fingerprint(source, runner, options, video, encoding))
        selection, upscaled = _encode_segments(source, parts, runner, options, video, info, encoding, progress)
        if selection.count == 0:
            shutil.rmtree(parts, ignore_errors=True)
            raise SrganError(f"{source}: no frames in the chosen range")
        segments = -(-selection.count // video.segment_frames)
        atomic_write(target, lambda tmp: join_segments(parts, segments, source, tmp, fmt, info, encoding,
                                                       window=selection.window, offset=selection.offset),
                     overwrite=overwrite)
    shutil.rmtree(parts, ignore_errors=True)
    return VideoResult(target, selection.count, upscaled, time.perf_counter() - started)


def _encode_segments(source: Path, parts: Path, runner: Runner, options: UpscaleOptions, video: VideoOptions,
                     info: VideoInfo, encoding: Encoding, progress: bool) -> tuple[Selection, int]:
    """Decode, upscale and encode the frames of the segments not yet in `parts`, with a progress bar
    in frames (frames of finished segments count as done). Interrupted: the finished segments stay."""
    done = set(finished_segments(parts))
    bar = tqdm(total=_frame_estimate(info, video), desc=source.name, unit="frame", dynamic_ncols=True,
               disable=not progress)

    def skip(index: int) -> bool:
        if index // video.segment_frames in done:
            bar.update()
            return True
        return False

    sink = SegmentWriter(parts, video.segment_frames, encoding, info)
    frames, selection = decode_frames(source, info, video, skip=skip)
    try:
        upscaled = run_frames(frames, sink, lambda image: upscale_loaded(image, runner, options),
                              on_frame=lambda _: bar.update())
        sink.close()
    except BaseException:
        sink.abort()
        kept = len(finished_segments(parts))
        if not kept:
            shutil.rmtree(parts, ignore_errors=True)
        else:
            log.warning("stopped: %d finished segment(s) kept in %s; run the same command again to resume", kept,
                        parts)
        raise
    finally:
        bar.close()
    return selection, upscaled


@contextlib.contextmanager
def _ffmpeg_errors(source: Path) -> Iterator[None]:
    """An FFmpeg failure not foreseen elsewhere (an encoder refusing a setting, a muxer a stream) as one line."""
    av = require_av()
    try:
        yield
    except av.error.FFmpegError as exc:
        raise SrganError(f"{source}: FFmpeg failed: {one_line(exc)}") from exc


def read_info(source: Path) -> VideoInfo:
    """`VideoInfo` of `source`, decoding its first frame (a file that cannot give one is refused)."""
    if is_webp(source):
        return webp_info(source)
    av = require_av()
    with open_video(source) as container:
        try:
            first = next(container.decode(video=0), None)
        except av.error.FFmpegError as exc:
            raise SrganError(f"{source}: cannot decode its video ({one_line(exc)})") from exc
        if first is None:
            raise SrganError(f"{source}: its video stream holds no frames")
        return probe(container, first)


def output_size(info: VideoInfo, runner: Runner, options: UpscaleOptions) -> tuple[int, int]:
    """The upscaled frame size, as `upscale_loaded` makes it (before evening)."""
    if options.outscale is None or options.outscale == runner.scale:
        return info.width * runner.scale, info.height * runner.scale
    return max(1, round(info.width * options.outscale)), max(1, round(info.height * options.outscale))


def fixed_tile(options: UpscaleOptions, runner: Runner, info: VideoInfo) -> UpscaleOptions:
    """`tile="auto"` resolved once for the frame size, so every frame gets the same tile grid."""
    if options.tile != "auto":
        return options
    context = getattr(runner.model, "context", None)
    radius = context() if context is not None else None
    pad = options.tile_pad if options.tile_pad is not None else FEATHER_PAD if radius is None else radius
    tile = auto_tile(runner.model, (info.height, info.width), scale=runner.scale, tile_pad=pad,
                     device=runner.device, dtype=runner.dtype)
    return options.replace(tile=tile)


@dataclass
class Selection:
    """The frames taken, filled in while decoding: how many, the source's time span of the sound to
    keep (None: all of it) and the seconds every timestamp is moved back by."""

    count: int = 0
    window: tuple[float, float | None] | None = None
    offset: float = 0.0


def decode_frames(source: Path, info: VideoInfo, video: VideoOptions, *, skip: Any) -> tuple[Iterator[Frame], Selection]:
    """The frame source: every selected frame of `source` in order, numbered from 0, with its
    timestamp (moved back to start at 0 when `start` is given). Frames `skip(index)` are counted
    but not converted (they are in finished segments)."""
    selection = Selection()
    decoded = webp_frames(source) if is_webp(source) else _av_frames(source, info, selection)
    return _selected(decoded, info, video, skip, selection), selection


def _av_frames(source: Path, info: VideoInfo, selection: Selection) -> Decoded:
    """Every frame PyAV decodes from `source`: its pts, its duration and a callable converting it."""
    av = require_av()
    with open_video(source) as container:
        try:
            for decoded in container.decode(video=0):
                yield decoded.pts, decoded.duration, functools.partial(frame_to_image, decoded, info)
        except av.error.FFmpegError as exc:
            raise SrganError(f"{source}: the video is damaged or cut short at frame {selection.count} "
                             f"({one_line(exc)})") from exc


def _selected(decoded: Decoded, info: VideoInfo, video: VideoOptions, skip: Any, selection: Selection
              ) -> Iterator[Frame]:
    """The frames of `decoded` that `video` selects (see `decode_frames`), counted in `selection`."""
    cut = video.start is not None or video.end is not None or video.frames is not None
    first = last = None
    shift = 0
    with contextlib.closing(decoded):
        for pts, duration, image in decoded:
            seconds = float(pts * info.time_base) if pts is not None else None
            if video.start is not None and seconds is not None and seconds < video.start:
                continue
            if (video.end is not None and seconds is not None and seconds >= video.end) or \
                    (video.frames is not None and selection.count >= video.frames):
                break
            if first is None:
                first = seconds or 0.0
                selection.offset = first if video.start is not None else 0.0
                shift = round(selection.offset / info.time_base)
            index, selection.count = selection.count, selection.count + 1
            last = (seconds or 0.0) + float((duration or 0) * info.time_base)
            if skip(index):
                continue
            yield Frame(index, image(), None if pts is None else pts - shift, info.time_base, duration)
    if cut and first is not None:
        selection.window = (first, video.end if video.end is not None and video.frames is None else last)


def _upscale_to_webp(source: Path, target: Path, runner: Runner, options: UpscaleOptions, video: VideoOptions, *,
                     overwrite: bool, progress: bool) -> VideoResult:
    """`source` (an animation or a video) to an animated WebP written by Pillow (see the module
    docstring): in one piece at the end, so a killed run starts over."""
    started = time.perf_counter()
    given = [name for name in ("codec", "crf", "preset", "pix_fmt") if getattr(video, name) is not None]
    if given:
        raise SrganError(f"{target}: an animated WebP is written by Pillow, which takes no "
                         f"--{given[0].replace('_', '-')} (--quality N makes it lossy)")
    with contextlib.nullcontext() if is_webp(source) else _ffmpeg_errors(source):
        info = read_info(source)
        options = fixed_tile(options, runner, info)
        sink = WebpWriter()
        frames, selection = decode_frames(source, info, video, skip=lambda _: False)
        with tqdm(total=_frame_estimate(info, video), desc=source.name, unit="frame", dynamic_ncols=True,
                  disable=not progress) as bar:
            run_frames(frames, sink, lambda image: upscale_loaded(image, runner, options),
                       on_frame=lambda _: bar.update())
    if selection.count == 0:
        raise SrganError(f"{source}: no frames in the chosen range")
    atomic_write(target, lambda tmp: sink.save(tmp, loop=info.loop, quality=options.quality), overwrite=overwrite)
    return VideoResult(target, selection.count, selection.count, time.perf_counter() - started)


def resume_folder(target: Path, fingerprint: dict) -> Path:
    """`.NAME.srgan-parts` beside `target`, kept if it holds segments of this same job, else made anew."""
    make_folder(target.parent)
    parts = target.parent / f".{target.name}.srgan-parts"
    record = parts / "job.json"
    text = json.dumps(fingerprint, sort_keys=True)
    if parts.is_dir():
        same = record.is_file() and record.read_text() == text
        if same:
            for partial in parts.glob("*.partial"):  # left by a killed run
                partial.unlink()
            kept = len(finished_segments(parts))
            if kept:
                log.info("resuming %s: %d finished segment(s) kept", target.name, kept)
            return parts
        log.info("%s holds segments of another job: starting over", parts)
        shutil.rmtree(parts)
    parts.mkdir()
    atomic_write(record, lambda tmp: Path(tmp).write_text(text))
    return parts


def _fingerprint(source: Path, runner: Runner, options: UpscaleOptions, video: VideoOptions,
                 encoding: Encoding) -> dict:
    stat = source.stat()
    return {"input": str(source.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            "model": _model_digest(runner, options), "options": repr(options.replace(model=None)),
            "video": repr(video), "encoding": repr(encoding), "segment_format": SEGMENT_FORMAT}


def _model_digest(runner: Runner, options: UpscaleOptions) -> str:
    """The weights' identity: a hash of the parameters of a torch model, else the name it was given."""
    state = getattr(runner.model, "state_dict", None)
    if state is None:
        return str(options.model)
    digest = hashlib.sha256()
    for name, tensor in state().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(dtype=torch.uint8).numpy())
    return f"{runner.dtype} {digest.hexdigest()}"


def _check_container(fmt: str, encoding: Encoding, target: Path) -> None:
    av = require_av()
    with av.open(io.BytesIO(), "w", format=fmt) as probe_out:
        codecs = probe_out.supported_codecs
    if av.Codec(encoding.codec, "w").canonical_name not in codecs:
        raise SrganError(f"{target.suffix} files cannot hold {encoding.codec}: choose another --codec or container")


def _check_encoder(encoding: Encoding, info: VideoInfo) -> None:
    """Open the encoder once with the job's settings, so a setting it refuses stops the job before any work."""
    av = require_av()
    context = av.CodecContext.create(encoding.codec, "w")
    encoding.configure(context, info)
    try:
        context.open()
    except av.error.FFmpegError as exc:
        raise SrganError(f"{encoding.codec} refuses these settings ({encoding.pix_fmt}, "
                         f"{encoding.options}): {one_line(exc)}") from exc


def _frame_estimate(info: VideoInfo, video: VideoOptions) -> int | None:
    total = info.frames
    if video.frames is not None:
        return video.frames if total is None else min(total, video.frames)
    if video.start is not None or video.end is not None:
        return None
    return total


def with_fields(video: VideoOptions | None, **fields: Any) -> VideoOptions:
    """`video` (default: the defaults) with `fields` changed; an unknown name is one `SrganError`."""
    video = video or VideoOptions()
    known = {f.name for f in dataclasses.fields(VideoOptions)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise SrganError(f"unknown video option {unknown[0]!r} (known: {', '.join(sorted(known))})")
    return dataclasses.replace(video, **fields) if fields else video
