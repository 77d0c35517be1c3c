"""The video frame sink: upscaled frames encoded into fixed-length segments, each written whole or
not at all, then joined with the input's sound and subtitles by stream copy.

Why segments: a job of hours must survive being killed. Segment `k` holds frames
`k * length .. (k + 1) * length - 1` of the selection, encoded by a fresh encoder (so it starts
with a key frame and ends flushed: a closed piece of bitstream) into `seg_NNNNN.pkt` under a
temporary name, renamed when complete. A rerun with the same settings finds the finished segments
and only encodes the rest; encoding is deterministic, so the joined result equals an uninterrupted
run frame for frame.

A segment file is the encoder's packets as they came out: per packet its pts, dts, duration (in
the input's time base), key-frame flag and bytes. Containers were tried and dropped: NUT and
Matroska store no dts for the first packets after B-frame reordering, and MP4's edit list moved
the first pts by a few ticks, so a join would have to guess what the encoder had said exactly.
Every segment's encoder has the same settings, so its headers (SPS/PPS, extradata) equal those of
the (never fed) encoder the final file's video stream is declared with.

The join writes one file (atomically, by the caller): the video packets of every segment in
order, and the input's audio and subtitle packets copied as they are (re-encoded to AAC only where
the output container cannot hold the codec; a subtitle it cannot hold is left out with a notice),
merged by time so the muxer never buffers more than a few packets.
"""

from __future__ import annotations

import contextlib
import heapq
import io
import logging
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO

from srgan.errors import SrganError, one_line
from srgan.imaging.video import VideoInfo, image_to_frame, require_av
from srgan.inference.frames import Frame

log = logging.getLogger(__name__)

SEGMENT_SUFFIX = ".pkt"
SEGMENT_FORMAT = 2  # in the resume record: segments of another format are made again, not read
_MAGIC = f"srgan-video-segment {SEGMENT_FORMAT}\n".encode()
_RECORD = struct.Struct("<qqqBII")  # pts, dts, duration, key frame, size, size of new extradata
_NONE = -(2**63)


@dataclass(frozen=True)
class Encoding:
    """The encoder of every segment, fully resolved (codec, options, pixel format, output size), and
    whether the output container wants codec headers out of band (MP4, Matroska: global header)."""

    codec: str
    pix_fmt: str
    options: dict[str, str]
    width: int
    height: int
    global_header: bool = True

    def configure(self, context: Any, info: VideoInfo) -> None:
        """Set up a video encoder context: the same for every segment and for the joined stream."""
        av = require_av()
        context.width, context.height, context.pix_fmt = self.width, self.height, self.pix_fmt
        context.time_base = info.time_base
        context.framerate = info.rate or Fraction(25)
        context.options = dict(self.options)
        for name, value in info.colour.items():
            if value and not (name == "colorspace" and self.pix_fmt in ("bgr0", "rgb48le")):
                setattr(context, name, value)
        if self.global_header:
            context.flags |= av.codec.context.Flags.global_header


def segment_path(parts: Path, index: int) -> Path:
    return parts / f"seg_{index:05d}{SEGMENT_SUFFIX}"


def finished_segments(parts: Path) -> list[int]:
    """Indices of the complete segments in `parts` (a partial one has another name)."""
    return sorted(int(p.stem[4:]) for p in parts.glob(f"seg_*{SEGMENT_SUFFIX}") if p.stem[4:].isdigit())


class SegmentWriter:
    """A `FrameSink`: frame `i` goes to segment `i // length`; a segment is closed and renamed into
    place when the next one starts or at `close()`. `abort()` removes the unfinished one."""

    def __init__(self, parts: Path, length: int, encoding: Encoding, info: VideoInfo) -> None:
        self.parts, self.length, self.encoding, self.info = parts, length, encoding, info
        self.current: int | None = None
        self._file: BinaryIO | None = None
        self._encoder: Any = None
        self._frames = 0  # given to the current segment's encoder

    def write(self, frame: Frame) -> None:
        index = frame.index // self.length
        if index != self.current:
            self._finish()
            self._open(index)
        image = frame.image
        if (image.width, image.height) != (self.encoding.width, self.encoding.height):  # odd size: even it
            image = image.replace(pixels=image.pixels[:, :self.encoding.height, :self.encoding.width])
        out = image_to_frame(image, self.encoding.pix_fmt, self.info)
        out.pts, out.time_base = frame.pts, self.info.time_base
        self._frames += 1
        self._store(self._encoder.encode(out))

    def close(self) -> None:
        self._finish()

    def abort(self) -> None:
        if self._file is not None:
            self._file.close()
            with contextlib.suppress(OSError):
                os.unlink(self._partial)
        self._file = self._encoder = self.current = None

    @property
    def _partial(self) -> Path:
        return self.parts / f"seg_{self.current:05d}.partial"

    def _open(self, index: int) -> None:
        av = require_av()
        self.current, self._frames = index, 0
        self._encoder = av.CodecContext.create(self.encoding.codec, "w")
        self.encoding.configure(self._encoder, self.info)
        self._file = open(self._partial, "wb")  # noqa: SIM115 (closed by _finish or abort)
        self._file.write(_MAGIC)

    def _finish(self) -> None:
        if self._file is None:
            return
        packets = self._encoder.encode(None)
        if self.encoding.codec == "libx265" and self._frames <= 2:
            # x265 takes these packets' dts from a member it never sets in an encode of 2 frames or
            # fewer (Encoder::m_bframeDelayTime, uninitialised): garbage that the muxer refuses at
            # random. Set to 0, as meant, it gives dts = pts (no reordering in 2 frames).
            for packet in packets:
                packet.dts = packet.pts
        self._store(packets)
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self._partial, segment_path(self.parts, self.current))
        self._file = self._encoder = self.current = None

    def _store(self, packets: list[Any]) -> None:
        """Each packet, with the codec headers an encoder hands over in a packet rather than up front
        (APNG's IHDR: new-extradata side data), which the joined stream declares as its extradata."""
        for packet in packets:
            data = bytes(packet)
            extra = b"".join(bytes(sd) for sd in packet.iter_sidedata() if sd.data_type == "new_extradata")
            self._file.write(_RECORD.pack(_int(packet.pts), _int(packet.dts), _int(packet.duration),
                                          int(packet.is_keyframe), len(data), len(extra)))
            self._file.write(data + extra)


def read_segment(path: Path) -> Iterator[tuple[int | None, int | None, int | None, bool, bytes, bytes]]:
    """The packets of a segment file: (pts, dts, duration, key frame, data, new extradata)."""
    with open(path, "rb") as file:
        if file.read(len(_MAGIC)) != _MAGIC:
            raise SrganError(f"{path}: not a segment file of this srgan version")
        while header := file.read(_RECORD.size):
            pts, dts, duration, key, size, extra = _RECORD.unpack(header)
            yield _opt(pts), _opt(dts), _opt(duration), bool(key), file.read(size), file.read(extra)


def _int(value: int | None) -> int:
    return _NONE if value is None else int(value)


def _opt(value: int) -> int | None:
    return None if value == _NONE else value


# ---------------------------------------------------------------- join
def join_segments(parts: Path, count: int, source: Path, target: str, fmt: str, info: VideoInfo,
                  encoding: Encoding, *, window: tuple[float, float | None] | None = None,
                  offset: float = 0.0) -> None:
    """Write `target` (container `fmt`): the `count` segments' video and the audio and subtitles of
    `source`, those within `window` (seconds of the source; None: all) shifted back by `offset`."""
    av = require_av()
    with contextlib.ExitStack() as stack:
        src = stack.enter_context(av.open(str(source)))
        out = stack.enter_context(av.open(target, "w", format=fmt))
        video = out.add_stream(encoding.codec, rate=info.rate or Fraction(25))
        encoding.configure(video.codec_context, info)
        video.time_base = info.time_base
        headers = next((extra for *_, extra in read_segment(segment_path(parts, 0)) if extra), b"")
        if headers:
            video.codec_context.extradata = headers
        if info.rotation:
            video.set_display_rotation(info.rotation)
        copies = _other_streams(src, out)
        packets = heapq.merge(_segment_packets(parts, count, video, info.time_base), _copied_packets(src, copies, window, offset),
                              key=lambda item: item[0])
        for _, packet in packets:
            out.mux(packet)
        for _, encoder in copies.values():
            if encoder is not None:
                out.mux(encoder.encode(None))


def _other_streams(src: Any, out: Any) -> dict[int, tuple[Any, Any]]:
    """Input stream index -> (output stream, audio encoder or None) for every audio and subtitle
    stream the output can hold: copied when it holds the codec, audio re-encoded otherwise (to AAC,
    or where the container cannot hold AAC either, as WebM, to its own default: Opus)."""
    streams: dict[int, tuple[Any, Any]] = {}
    supported = out.supported_codecs
    fallback = "aac" if "aac" in supported else out.default_audio_codec
    for stream in src.streams:
        if stream.type not in ("audio", "subtitle"):
            continue
        name = stream.codec_context.name if stream.codec_context else "unknown"
        if name in supported and _holds(out.format.name, src.name, stream.index):
            streams[stream.index] = (out.add_stream_from_template(stream), None)
        elif stream.type == "audio" and fallback not in (None, "none"):
            log.warning("audio stream %d (%s) cannot go into this container: re-encoded to %s", stream.index, name,
                        fallback)
            encoder = out.add_stream(fallback, rate=stream.rate, layout=stream.layout)
            streams[stream.index] = (encoder, encoder)
        else:
            log.warning("%s stream %d (%s) cannot go into this container: left out", stream.type, stream.index, name)
    return streams


def _holds(fmt: str, source: str, index: int) -> bool:
    """Whether container `fmt` takes the first packet of stream `index` copied (the muxer's list of
    codecs is not the whole truth: MP4 lists PCM but refuses most channel layouts of it)."""
    av = require_av()
    try:
        with av.open(source) as src, av.open(io.BytesIO(), "w", format=fmt.split(",")[0]) as out:
            stream = out.add_stream_from_template(src.streams[index])
            for packet in src.demux(src.streams[index]):
                if packet.size:
                    packet.stream = stream
                    out.mux(packet)
                    break
    except av.error.FFmpegError:
        return False
    return True


def _segment_packets(parts: Path, count: int, video: Any, time_base: Fraction) -> Iterator[tuple[Fraction, Any]]:
    av = require_av()
    for index in range(count):
        for pts, dts, duration, key, data, _ in read_segment(segment_path(parts, index)):
            packet = av.Packet(data)
            packet.pts, packet.dts, packet.time_base, packet.is_keyframe = pts, dts, time_base, key
            if duration is not None:
                packet.duration = duration
            packet.stream = video
            yield (dts if dts is not None else pts) * time_base, packet


def _copied_packets(src: Any, copies: dict[int, tuple[Any, Any]], window: tuple[float, float | None] | None,
                    offset: float) -> Iterator[tuple[Fraction, Any]]:
    """The input's audio / subtitle packets in `window`, moved back by `offset` seconds (re-encoded
    where the stream has an encoder)."""
    if not copies:
        return
    wanted = [s for s in src.streams if s.index in copies]
    try:
        for packet in src.demux(wanted):
            if packet.size == 0 or (packet.dts is None and packet.pts is None):
                continue
            time = (packet.pts if packet.pts is not None else packet.dts) * packet.time_base
            if window is not None and (time < window[0] or (window[1] is not None and time >= window[1])):
                continue
            stream, encoder = copies[packet.stream.index]
            if encoder is not None:
                for frame in packet.decode():
                    frame.pts = None
                    for out in encoder.encode(frame):
                        yield time - Fraction(offset), out
                continue
            shift = round(Fraction(offset) / packet.time_base)
            packet.pts = None if packet.pts is None else packet.pts - shift
            packet.dts = None if packet.dts is None else packet.dts - shift
            packet.stream = stream
            yield time - Fraction(offset), packet
    except require_av().error.FFmpegError as exc:
        raise SrganError(f"{src.name}: cannot read its audio / subtitles ({one_line(exc)})") from exc
