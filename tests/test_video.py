"""`srgan upscale clip.mp4`: sound, timing, colours, streams and resume, on clips made here with PyAV."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")

from PIL import Image
from video_clips import TAGS, frame_times, make_clip, packets, pattern, rgb_frames

import srgan
from srgan.cli import main
from srgan.imaging.io import LoadedImage
from srgan.inference.frames import Frame, run_frames

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def opts(tiny_weights):
    return srgan.UpscaleOptions(model=tiny_weights, device="cpu", precision="fp32")


def _stream_info(path: Path) -> dict:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        first = next(c.decode(video=0))
        return {"size": (first.width, first.height), "format": first.format.name, "rotation": first.rotation,
                "tags": {k: int(getattr(first, k)) for k in TAGS}, "duration": c.duration,
                "codec": v.codec_context.codec.canonical_name, "types": [s.type for s in c.streams]}


def test_cfr_mp4_keeps_frames_timestamps_audio_and_colour_tags(tmp_path, opts):
    src = make_clip(tmp_path / "clip.mp4")
    summary = srgan.upscale_video(src, options=opts, segment_frames=5)
    out = tmp_path / "clip_x4.mp4"
    assert [r.frames for r in summary.done] == [12]
    assert frame_times(out) == frame_times(src)  # 12 frames, each at its own time
    info, before = _stream_info(out), _stream_info(src)
    assert info["size"] == (192, 128) and info["codec"] == "h264" and info["format"] == "yuv420p"
    assert info["tags"] == before["tags"] == TAGS
    assert abs(info["duration"] - before["duration"]) < 50_000  # microseconds
    assert packets(out, "audio") == packets(src, "audio") and len(packets(src, "audio")) > 10
    assert not list(tmp_path.glob(".*"))  # no segments or temporary files left


def test_vfr_mkv_keeps_every_frame_time_and_subtitles(tmp_path, opts):
    src = make_clip(tmp_path / "vfr.mkv", vfr=True, subtitles=True)
    srgan.upscale_video(src, options=opts, segment_frames=4)
    out = tmp_path / "vfr_x4.mkv"
    times = frame_times(out)
    assert times == frame_times(src) and len(set(np.diff([float(t) for t in times]).round(3))) == 3
    assert packets(out, "audio") == packets(src, "audio")
    assert packets(out, "subtitle") == packets(src, "subtitle") == [b"line 0", b"line 4", b"line 8"]


def test_10bit_stays_10bit(tmp_path, opts):
    src = make_clip(tmp_path / "deep.mkv", pix_fmt="yuv420p10le", audio=False)
    srgan.upscale_video(src, options=opts)
    out = tmp_path / "deep_x4.mkv"
    assert _stream_info(out)["format"] == "yuv420p10le"
    with av.open(str(out)) as c:
        luma = next(c.decode(video=0)).to_ndarray(format="gray16le") >> 6  # the 10-bit values
    # an 8-bit path would leave only multiples of 4 on the 10-bit grid
    assert np.mean(luma % 4 != 0) > 0.3


def test_10bit_frames_are_upscaled_as_16bit_images(tmp_path, opts):
    src = make_clip(tmp_path / "deep.mkv", frames=3, pix_fmt="yuv420p10le", audio=False)
    out = tmp_path / "deep_ffv1.mkv"
    srgan.upscale_video(src, out, options=opts.replace(tile=16), codec="ffv1")
    assert _stream_info(out)["format"] == "gbrp16le"  # FFV1 keeps 16-bit RGB planar
    expected = [srgan.upscale(f, options=opts.replace(tile=16)) for f in rgb_frames(src, "rgb48le")]
    got = rgb_frames(out, "rgb48le")
    assert expected[0].dtype == np.uint16 and len(got) == 3
    assert all(np.array_equal(a, b) for a, b in zip(got, expected, strict=True))


def test_rotation_no_audio_and_preview_range(tmp_path, tiny_weights):
    src = make_clip(tmp_path / "rot.mp4", rotation=90, audio=False, frames=20)
    out = tmp_path / "preview.mp4"
    srgan.upscale_video(src, out, model=tiny_weights, device="cpu", precision="fp32", start=0.2, frames=5)
    info = _stream_info(out)
    assert info["rotation"] == 90 and info["types"] == ["video"]
    assert frame_times(out) == [t - Fraction(5, 24) for t in frame_times(src)[5:10]]


def test_ffv1_output_equals_srgan_upscale_of_the_decoded_frames(tmp_path, opts):
    src = make_clip(tmp_path / "clip.mkv", frames=6)
    out = tmp_path / "lossless.mkv"
    srgan.upscale_video(src, out, options=opts.replace(tile=16), codec="ffv1")
    expected = [srgan.upscale(f, options=opts.replace(tile=16)) for f in rgb_frames(src)]
    got = rgb_frames(out)
    assert len(got) == 6 and all(np.array_equal(a, b) for a, b in zip(got, expected, strict=True))
    # and the lossy default is within codec loss of the same frames
    srgan.upscale_video(src, tmp_path / "lossy.mkv", options=opts.replace(tile=16))
    for a, b in zip(rgb_frames(tmp_path / "lossy.mkv"), expected, strict=True):
        mse = np.mean((a.astype(float) - b) ** 2)
        assert 10 * np.log10(255**2 / mse) > 30


@pytest.mark.parametrize("tile_pad", [None, 2])  # exact tiles, and blended tiles with too little context
def test_still_scene_gives_identical_frames(tmp_path, opts, tile_pad):
    src = make_clip(tmp_path / "still.mkv", frames=5, still=True, audio=False, size=(64, 48))
    out = tmp_path / "still_out.mkv"
    srgan.upscale_video(src, out, options=opts.replace(tile=16, tile_pad=tile_pad), codec="ffv1")
    frames = rgb_frames(out)
    assert len(frames) == 5 and all(np.array_equal(frames[0], f) for f in frames)


@pytest.mark.parametrize("codec", ["h265", "vp9", "av1"])
def test_other_codecs_and_even_dimensions(tmp_path, opts, codec):
    src = make_clip(tmp_path / "c.mkv", frames=4, audio=False)
    out = tmp_path / "out.mkv"
    srgan.upscale_video(src, out, options=opts.replace(outscale=1.1), codec=codec, crf=30, segment_frames=2)
    info = _stream_info(out)
    assert info["size"] == (52, 34) and info["codec"] == {"h265": "hevc"}.get(codec, codec)  # 53x35 evened
    assert len(frame_times(out)) == 4


def test_audio_the_container_cannot_hold_is_reencoded_with_a_notice(tmp_path, opts, caplog):
    src = make_clip(tmp_path / "pcm.mkv", frames=6, audio_codec="pcm_s16le")
    srgan.upscale_video(src, tmp_path / "out.mov", options=opts, codec="h264")  # MOV holds PCM: copied
    assert packets(tmp_path / "out.mov", "audio") == packets(src, "audio")
    srgan.upscale_video(src, tmp_path / "out.webm", options=opts)  # WebM does not, nor AAC; nor H.264: VP9
    with av.open(str(tmp_path / "out.webm")) as c:
        assert [s.codec_context.codec.canonical_name for s in c.streams] == ["vp9", "opus"]
        seconds = sum(f.samples for f in c.decode(audio=0)) / 48000
    assert abs(seconds - 0.25) < 0.03  # 6 frames at 24 fps
    notice = "audio stream 1 (pcm_s16le) cannot go into this container: re-encoded to opus"
    assert [r.message for r in caplog.records] == [notice]


def _cli(tiny_weights: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "srgan", "upscale", *args, "--model", tiny_weights, "--device", "cpu",
            "--precision", "fp32"]


def test_killed_job_resumes_to_the_same_frames(tmp_path, tiny_weights):
    """SIGTERM, then SIGKILL mid-job: nothing under the final name; the rerun equals an uninterrupted run."""
    src = make_clip(tmp_path / "long.mp4", frames=60, size=(96, 64))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    subprocess.run(_cli(tiny_weights, str(src), "-o", str(tmp_path / "whole.mp4"), "--segment-frames", "6"),
                   env=env, check=True, capture_output=True)
    target, parts = tmp_path / "resumed.mp4", tmp_path / ".resumed.mp4.srgan-parts"
    command = _cli(tiny_weights, str(src), "-o", str(target), "--segment-frames", "6")
    for sig, wanted in ((signal.SIGTERM, "seg_00001.pkt"), (signal.SIGKILL, "seg_00004.pkt")):
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while not (parts / wanted).exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == (143 if sig == signal.SIGTERM else -9), err
        assert not target.exists()
        assert 0 < len(list(parts.glob("seg_*.pkt"))) < 10
    done = subprocess.run(command, check=False, env=env, capture_output=True, text=True)
    assert done.returncode == 0 and "resuming" in done.stderr, done.stderr
    whole, resumed = rgb_frames(tmp_path / "whole.mp4"), rgb_frames(target)
    assert len(resumed) == 60 and all(np.array_equal(a, b) for a, b in zip(whole, resumed, strict=True))
    assert packets(target, "audio") == packets(src, "audio") and not parts.exists()


def _broken(tmp_path: Path, kind: str) -> Path:
    if kind == "truncated":
        whole = make_clip(tmp_path / "whole.mp4").read_bytes()
        path = tmp_path / "cut.mp4"
        path.write_bytes(whole[: len(whole) // 2])
    elif kind == "no video":
        path = tmp_path / "sound.mkv"
        with av.open(str(path), "w") as out:
            stream = out.add_stream("aac", rate=48000, layout="stereo")
            frame = av.AudioFrame.from_ndarray(np.zeros((2, 1024), np.float32), format="fltp", layout="stereo")
            frame.sample_rate, frame.pts = 48000, 0
            out.mux(stream.encode(frame))
            out.mux(stream.encode(None))
    elif kind == "unknown codec":
        path = tmp_path / "odd.avi"
        with av.open(str(path), "w") as out:
            stream = out.add_stream("mpeg4", rate=24)
            stream.width, stream.height, stream.pix_fmt = 48, 32, "yuv420p"
            for i in range(3):
                frame = av.VideoFrame.from_ndarray(np.full((32, 48, 3), i * 50, np.uint8), format="rgb24")
                frame.pts = i
                out.mux(stream.encode(frame.reformat(format="yuv420p")))
            out.mux(stream.encode(None))
        path.write_bytes(path.read_bytes().replace(b"FMP4", b"QQZ9"))
    else:
        path = tmp_path / "notes.mp4"
        path.write_bytes(b"these are not the frames you are looking for\n" * 100)
    return path


@pytest.mark.parametrize("kind", ["truncated", "no video", "unknown codec", "not a video"])
def test_bad_inputs_get_one_line_and_leave_nothing(tmp_path, tiny_weights, capsys, kind):
    path = _broken(tmp_path, kind)
    before = set(tmp_path.iterdir())
    code = main(["upscale", str(path), "--model", tiny_weights, "--device", "cpu", "--precision", "fp32"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("srgan: error: ") and str(path) in err[0], err
    assert "Traceback" not in err[0]
    assert set(tmp_path.iterdir()) == before


def test_run_frames_keeps_order_and_raises_errors():
    images = [LoadedImage(pixels=np.full((3, 2, 2), i / 10, np.float32)) for i in range(7)]
    written: list[int] = []

    class Sink:
        def write(self, frame: Frame) -> None:
            written.append(frame.index)

    source = (Frame(i, im) for i, im in enumerate(images))
    assert run_frames(source, Sink(), lambda im: im) == 7 and written == list(range(7))

    def failing():
        yield Frame(0, images[0])
        raise RuntimeError("decoder broke")

    with pytest.raises(RuntimeError, match="decoder broke"):
        run_frames(failing(), Sink(), lambda im: im)


def test_folder_of_videos_is_split_by_whole_files(tmp_path, tiny_weights, capsys):
    folder = tmp_path / "clips"
    folder.mkdir()
    for name in ("a.mp4", "b.mkv", "c.mov"):
        make_clip(folder / name, frames=3, audio=name != "c.mov")
    (folder / "cover.txt").write_text("not a clip")
    common = ["--model", tiny_weights, "--device", "cpu", "--precision", "fp32"]
    outputs = []
    for shard in ("0/2", "1/2"):
        assert main(["upscale", str(folder), "-o", str(tmp_path / "out"), "--shard", shard, *common]) == 0
        outputs.append(sorted(p.name for p in (tmp_path / "out").iterdir()))
        assert "upscaled" in capsys.readouterr().out
    assert 0 < len(outputs[0]) < 3 and outputs[1] == ["a_x4.mp4", "b_x4.mkv", "c_x4.mov"]
    assert all(len(frame_times(tmp_path / "out" / name)) == 3 for name in outputs[1])


def test_without_pyav_one_line_names_the_extra(tmp_path, tiny_weights, capsys, monkeypatch):
    clip = make_clip(tmp_path / "clip.mp4", frames=2)
    monkeypatch.setitem(sys.modules, "av", None)  # import av -> ImportError
    assert main(["upscale", str(clip), "--model", tiny_weights, "--device", "cpu"]) == 2
    assert capsys.readouterr().err.strip() == ("srgan: error: video needs PyAV: pip install 'srgan[video]' "
                                               "(or pip install av)")


def test_animated_gif_becomes_a_lossless_animated_png(tmp_path, tiny_weights):
    """Frames, their delays and transparency kept: APNG, since a GIF's 256 colours would undo the upscaling."""
    frames = [Image.fromarray(pattern(i, 40, 24)) for i in range(4)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=[40, 80, 40, 60], loop=0)
    assert main(["upscale", str(tmp_path / "anim.gif"), "--model", tiny_weights, "--device", "cpu",
                 "--precision", "fp32", "--tile", "16"]) == 0
    out = tmp_path / "anim_x4.png"
    with Image.open(out) as im:
        assert im.is_animated and im.n_frames == 4 and im.size == (160, 96)
    assert frame_times(out) == frame_times(tmp_path / "anim.gif") == [Fraction(t, 100) for t in (0, 4, 12, 16)]
    expected = [srgan.upscale(f, tiny_weights, device="cpu", precision="fp32", tile=16)
                for f in rgb_frames(tmp_path / "anim.gif", "rgba")]
    assert all(np.array_equal(a, b) for a, b in zip(rgb_frames(out, "rgba"), expected, strict=True))


@pytest.mark.parametrize(("fields", "message"), [
    ({"codec": "mpeg2"}, "codec must be one of"), ({"crf": -1}, "crf must be a whole number"),
    ({"codec": "ffv1", "crf": 10}, "lossless"), ({"codec": "vp9", "preset": "slow"}, "has no presets"),
    ({"start": "soon"}, "start must be a number"), ({"start": 5, "end": 2}, "must be after start"),
    ({"frames": 0}, "frames must be a whole number"), ({"speed": 2}, "unknown video option 'speed'")])
def test_video_options_are_checked_where_they_enter(fields, message):
    from srgan.inference.video import with_fields

    with pytest.raises(srgan.SrganError, match=message):
        with_fields(None, **fields)
