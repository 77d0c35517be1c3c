"""Small video clips made with PyAV for the video tests: a moving pattern (every frame different),
an optional 440 Hz sine track, variable frame timing, 10 bits, rotation, subtitles."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

VFR_STEPS_MS = (30, 50, 41)  # frame durations of the variable-frame-rate clip, in turn
TAGS = {"color_primaries": 1, "color_trc": 1, "colorspace": 1, "color_range": 1}  # BT.709, limited range


def pattern(index: int, width: int, height: int, still: bool = False) -> np.ndarray:
    """A smooth RGB pattern that moves with `index` (does not move when `still`)."""
    t = 0 if still else index
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r = 128 + 100 * np.sin(x / 5 + t * 0.4)
    g = 128 + 100 * np.cos(y / 4 - t * 0.3)
    b = 128 + 90 * np.sin((x + y) / 7 + t * 0.2)
    return np.clip(np.stack([r, g, b], -1), 0, 255).astype(np.uint8)


def make_clip(path: Path, *, frames: int = 12, size: tuple[int, int] = (48, 32), rate: int = 24,
              audio: bool = True, pix_fmt: str = "yuv420p", vfr: bool = False, rotation: int | None = None,
              subtitles: bool = False, still: bool = False, audio_codec: str = "aac") -> Path:
    out = av.open(str(path), "w")
    video = out.add_stream("libx264", rate=rate, options={"crf": "12"})
    video.width, video.height, video.pix_fmt = size[0], size[1], pix_fmt
    video.codec_context.time_base = Fraction(1, 1000) if vfr else Fraction(1, rate)
    for name, value in TAGS.items():
        setattr(video.codec_context, name, value)
    if rotation is not None:
        video.set_display_rotation(rotation)
    sound = out.add_stream(audio_codec, rate=48000, layout="stereo") if audio else None
    subs = out.add_mux_stream("subrip") if subtitles else None
    if subs is not None:
        subs.time_base = Fraction(1, 1000)
    clock = 0
    for i in range(frames):
        frame = av.VideoFrame.from_ndarray(pattern(i, *size, still=still), format="rgb24")
        frame = frame.reformat(format=pix_fmt, dst_colorspace=1, dst_color_range=1)
        frame.pts = clock if vfr else i
        clock += VFR_STEPS_MS[i % 3] if vfr else 1
        out.mux(video.encode(frame))
        if subs is not None and i % 4 == 0:
            packet = av.Packet(f"line {i}".encode())
            packet.pts = packet.dts = int(i * 1000 / rate)
            packet.duration, packet.time_base, packet.stream = 100, Fraction(1, 1000), subs
            out.mux(packet)
    out.mux(video.encode(None))
    if sound is not None:
        _sine(out, sound, clock / 1000 if vfr else frames / rate)
    out.close()
    return path


def _sine(out: av.container.OutputContainer, stream: av.AudioStream, seconds: float) -> None:
    total, pos = int(seconds * 48000), 0
    while pos < total:
        n = min(1024, total - pos)
        wave = (0.3 * np.sin(2 * np.pi * 440 * np.arange(pos, pos + n) / 48000)).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(np.stack([wave, wave]), format="fltp", layout="stereo")
        frame.sample_rate, frame.pts = 48000, pos
        out.mux(stream.encode(frame))
        pos += n
    out.mux(stream.encode(None))


def frame_times(path: Path) -> list[Fraction]:
    with av.open(str(path)) as container:
        return [f.pts * f.time_base for f in container.decode(video=0)]


def rgb_frames(path: Path, fmt: str = "rgb24") -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format=fmt) for f in container.decode(video=0)]


def packets(path: Path, kind: str) -> list[bytes]:
    with av.open(str(path)) as container:
        streams = [s for s in container.streams if s.type == kind]
        return [bytes(p) for p in container.demux(streams) if p.size] if streams else []
