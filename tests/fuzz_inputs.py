"""Randomly corrupted, truncated and header-edited image and weight files through `srgan upscale`
and `srgan.load_model` (and images through the web server's header check), in this one process
under an address-space limit (run by tests/test_fuzz.py).

    python tests/fuzz_inputs.py WORKDIR [--seed 0] [--images 240] [--weights 160] [--memory-mb 2048]

Every case must end in success or a one-line `SrganError` (exit code 0, 1 or 2 from the CLI);
anything else escaping is a failure. The last line printed is one JSON object: cases, failures
(kind, file, error), leftover temporary files, seconds and the peak resident memory.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import resource
import struct
import sys
import time
import traceback
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import srgan
from srgan.cli import main as cli
from srgan.errors import SrganError
from srgan.imaging.io import LoadedImage, decode_image, encode_image

Mutation = Callable[[bytes, np.random.Generator], bytes]


# ---------------------------------------------------------------- valid files to start from
def base_images(rng: np.random.Generator) -> dict[str, bytes]:
    import tifffile

    def pil(mode: str, fmt: str, **options) -> bytes:
        size = (int(rng.integers(9, 25)), int(rng.integers(9, 25)))
        im = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 4), dtype=np.uint8), "RGBA").convert(mode)
        buffer = io.BytesIO()
        im.save(buffer, format=fmt, **options)
        return buffer.getvalue()

    def sixteen(fmt: str, channels: int) -> bytes:
        pixels = torch.from_numpy(rng.random((channels, 14, 17)).astype(np.float32))
        alpha = pixels[-1:] if channels in (2, 4) else None
        image = LoadedImage(pixels=pixels[:3] if channels == 4 else pixels[:1] if channels == 2 else pixels,
                            alpha=alpha, bit_depth=16)
        return encode_image(image, fmt)

    tiff16 = io.BytesIO()
    tifffile.imwrite(tiff16, rng.integers(0, 65535, (15, 13, 3)).astype(np.uint16), photometric="rgb",
                     compression="zlib")
    return {
        "rgb.png": pil("RGB", "PNG"), "rgba.png": pil("RGBA", "PNG"), "gray.png": pil("L", "PNG"),
        "palette.png": pil("P", "PNG", transparency=0), "rgb16.png": sixteen("PNG", 3), "la16.png": sixteen("PNG", 2),
        "rgb.jpg": pil("RGB", "JPEG", quality=90), "progressive.jpg": pil("RGB", "JPEG", progressive=True),
        "cmyk.jpg": pil("CMYK", "JPEG"), "rgb.tif": pil("RGB", "TIFF", compression="tiff_deflate"),
        "rgb16.tif": tiff16.getvalue(), "rgba16.tif": sixteen("TIFF", 4), "rgb.webp": pil("RGB", "WEBP"),
    }


def base_weights(folder: Path) -> dict[str, bytes]:
    from safetensors.torch import save

    torch.manual_seed(0)
    srresnet = srgan.create_model("srresnet_x4", blocks=1, width=8)
    compact = srgan.create_model("realesr_general_x4v3", convs=2, width=8)
    rrdb = srgan.create_model("realesrgan_x4plus_anime_6b", blocks=1, width=8, growth=4)
    own = srgan.save_model(srresnet, folder / "own.safetensors").read_bytes()
    state = lambda m: {k: v.contiguous() for k, v in m.state_dict().items()}
    pth = io.BytesIO()
    torch.save({"params_ema": state(rrdb)}, pth)
    return {"own.safetensors": own, "compact.safetensors": save(state(compact)), "rrdb.pth": pth.getvalue()}


# ---------------------------------------------------------------- mutations
def truncate(data: bytes, rng: np.random.Generator) -> bytes:
    return data[: int(rng.integers(0, len(data)))]


def flip_bytes(data: bytes, rng: np.random.Generator) -> bytes:
    out = bytearray(data)
    for _ in range(int(rng.integers(1, 17))):
        out[int(rng.integers(0, len(out)))] = int(rng.integers(0, 256))
    return bytes(out)


def splice(data: bytes, rng: np.random.Generator) -> bytes:
    """A random slice of the file copied to a random place (repeated chunks, markers, IFDs)."""
    a, b = sorted(int(x) for x in rng.integers(0, len(data), 2))
    at = int(rng.integers(0, len(data)))
    return data[:at] + data[a:b + 1] + data[at:]


def _any_int(rng: np.random.Generator, bits: int) -> int:
    """An edge value or a random one that fits in `bits` bits."""
    edges = [0, 1, 2, 3, 7, 8, 16, 255, 256, 4096, 65535, (1 << bits) - 1]
    edges = [e for e in edges if e < 1 << bits] + [int(rng.integers(0, 1 << bits, dtype=np.uint64))]
    return edges[int(rng.integers(0, len(edges)))]


def edit_header(data: bytes, rng: np.random.Generator) -> bytes:
    """Dimensions, depth and layout fields of the format's header set to odd values (CRCs kept valid)."""
    out = bytearray(data)
    if data.startswith(b"\x89PNG"):  # IHDR: width, height, bit depth, colour type, ..., then its CRC
        field = int(rng.integers(0, 5))
        offset, size = [(16, 4), (20, 4), (24, 1), (25, 1), (28, 1)][field]
        out[offset:offset + size] = _any_int(rng, 8 * size).to_bytes(size, "big")
        out[29:33] = struct.pack(">I", zlib.crc32(bytes(out[12:29])))
    elif data.startswith(b"\xff\xd8"):  # the frame header (SOF0/SOF2): height, width, components
        at = max(data.find(b"\xff\xc0"), data.find(b"\xff\xc2"))
        if at > 0:
            offset, size = [(5, 2), (7, 2), (9, 1)][int(rng.integers(0, 3))]
            out[at + offset:at + offset + size] = _any_int(rng, 8 * size).to_bytes(size, "big")
    elif data[:2] in (b"II", b"MM"):  # the first IFD: one entry's value
        order = "<" if data[:2] == b"II" else ">"
        ifd = struct.unpack(order + "I", data[4:8])[0]
        if ifd + 2 <= len(data):
            count = struct.unpack(order + "H", data[ifd:ifd + 2])[0]
            if count:
                entry = ifd + 2 + 12 * int(rng.integers(0, count))
                if entry + 12 <= len(data):
                    out[entry + 8:entry + 12] = struct.pack(order + "I", _any_int(rng, 32))
    elif data.startswith(b"RIFF"):
        out[4:8] = struct.pack("<I", _any_int(rng, 32))
    else:
        return flip_bytes(data, rng)
    return bytes(out)


_ODD_VALUES = [-1, 0, 1, 2, 3, 8, 1024, 10**7, 2**31, 2**63, 1e300, -1e300, 0.5, "abc", "", None, True, [], {},
               [1, 2], {"a": 1}, "NaN", [[[[[]]]]]]


def edit_safetensors(data: bytes, rng: np.random.Generator) -> bytes:
    """The JSON header edited: a tensor's shape, dtype or offsets, a metadata config value, the
    architecture, or the length field itself."""
    if len(data) < 8 or data[8:9] != b"{":
        return flip_bytes(data, rng)
    length = struct.unpack("<Q", data[:8])[0]
    try:
        header = json.loads(data[8:8 + length])
    except ValueError:
        return flip_bytes(data, rng)
    body = data[8 + length:]
    names = [k for k in header if k != "__metadata__"]
    choice = int(rng.integers(0, 7))
    pick = lambda seq: seq[int(rng.integers(0, len(seq)))]
    if choice == 0 and names:
        info = header[pick(names)]
        info["shape"] = [_any_int(rng, 32) for _ in range(int(rng.integers(0, 5)))]
    elif choice == 1 and names:
        header[pick(names)]["dtype"] = pick(["F16", "BF16", "F64", "I8", "U8", "BOOL", "F8_E4M3", "X", "I64"])
    elif choice == 2 and names:
        header[pick(names)]["data_offsets"] = sorted(_any_int(rng, 32) for _ in range(2))
    elif choice == 3 and names:
        del header[pick(names)]
    elif choice == 4 and "__metadata__" in header and "config" in header["__metadata__"]:
        config = json.loads(header["__metadata__"]["config"])
        config[pick(sorted(config))] = pick(_ODD_VALUES)
        header["__metadata__"]["config"] = json.dumps(config)
    elif choice == 5 and "__metadata__" in header:
        key = pick(sorted(header["__metadata__"]))
        header["__metadata__"][key] = json.dumps(pick(_ODD_VALUES + ["srresnet", "rrdbnet", "nope"]))
    else:
        return struct.pack("<Q", _any_int(rng, 64)) + data[8:]
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + body


_SRGAN_KEYS = ["scale", "srgan_config", "srgan_architecture", "srgan_context", "srgan_input_multiple",
               "srgan_precision"]


def edit_onnx(data: bytes, rng: np.random.Generator) -> bytes:
    """The parsed graph edited: srgan's metadata, the input's dimensions, a weight's dimensions, a
    node's operator or integer attributes, or an `Expand` to a huge shape spliced in."""
    import onnx
    from onnx import helper, numpy_helper

    try:
        model = onnx.load_from_string(data)
    except Exception:  # noqa: BLE001 - an earlier mutation broke it: edit the bytes instead
        return flip_bytes(data, rng)
    pick = lambda seq: seq[int(rng.integers(0, len(seq)))]
    graph = model.graph
    choice = int(rng.integers(0, 6))
    if choice == 0:
        key, value = pick(_SRGAN_KEYS), pick(_ODD_VALUES + ["srresnet", "rrdbnet", "int8", "4"])
        props = {p.key: p.value for p in model.metadata_props}
        props[key] = value if isinstance(value, str) else json.dumps(value)
        del model.metadata_props[:]
        for k, v in props.items():
            model.metadata_props.add(key=k, value=v)
    elif choice == 1:
        dim = pick(list(graph.input[0].type.tensor_type.shape.dim))
        dim.Clear()
        dim.dim_value = _any_int(rng, 20)
    elif choice == 2 and graph.initializer:
        tensor = pick(list(graph.initializer))
        tensor.dims[:] = [_any_int(rng, 16) for _ in range(int(rng.integers(0, 5)))]
    elif choice == 3 and graph.node:
        node = pick(list(graph.node))
        ints = [a for a in node.attribute if a.type == onnx.AttributeProto.INT]
        if ints and rng.random() < 0.5:
            pick(ints).i = pick([-1, 0, 2, 1 << 20, 1 << 40])
        else:
            node.op_type = pick(["Expand", "Tile", "Resize", "Identity", "NotAnOp", "Loop", "Reshape"])
    elif choice == 4 and graph.node:
        side = pick([1 << 10, 1 << 14, 100_000, 1 << 31])
        shape = numpy_helper.from_array(np.array([1, 3, side, side], np.int64), "fuzz_shape")
        graph.initializer.append(shape)
        first = graph.node[0]
        graph.node.insert(0, helper.make_node("Expand", [first.input[0], "fuzz_shape"], ["fuzz_big"]))
        first.input[0] = "fuzz_big"
    else:
        return pick([truncate, flip_bytes, splice])(data, rng)
    return model.SerializeToString()


def edit_manifest(data: bytes, rng: np.random.Generator) -> bytes:
    """One line of a manifest replaced: a field set to an odd value, a JSON value of the wrong shape,
    deep nesting, bytes that are not UTF-8, or a line cut short."""
    lines = data.splitlines(keepends=True)
    at = int(rng.integers(0, len(lines)))
    record = json.loads(lines[at])
    pick = lambda seq: seq[int(rng.integers(0, len(seq)))]
    choice = int(rng.integers(0, 5))
    if choice == 0:
        record[pick(sorted(record))] = pick(_ODD_VALUES + [float("nan"), float("inf"), [1, 2, 3], [-1, 5]])
        line = json.dumps(record).encode() + b"\n"
    elif choice == 1:
        line = json.dumps(pick(_ODD_VALUES + [[record], "done"])).encode() + b"\n"
    elif choice == 2:
        line = b"[" * int(rng.integers(100, 100_000)) + b"\n"
    elif choice == 3:
        line = bytes(rng.integers(128, 256, int(rng.integers(1, 64)), dtype=np.uint8)) + b"\n"
    else:
        line = lines[at][: int(rng.integers(0, len(lines[at])))]
    lines[at] = line
    return b"".join(lines)


IMAGE_MUTATIONS: list[Mutation] = [truncate, flip_bytes, splice, edit_header]
ONNX_MUTATIONS: list[Mutation] = [truncate, flip_bytes, edit_onnx, edit_onnx, edit_onnx]
MANIFEST_MUTATIONS: list[Mutation] = [flip_bytes, truncate, edit_manifest, edit_manifest, edit_manifest]
WEIGHT_MUTATIONS: list[Mutation] = [truncate, flip_bytes, splice, edit_safetensors, edit_safetensors]


def corrupted(folder: Path, bases: dict[str, bytes], mutations: list[Mutation], count: int,
              rng: np.random.Generator) -> Iterator[tuple[int, Path]]:
    """`count` files in `folder`, each a random mutation of one of `bases` in turn."""
    names = sorted(bases)
    for i in range(count):
        name = names[i % len(names)]
        mutate = mutations[int(rng.integers(0, len(mutations)))]
        path = folder / f"{i:04d}_{mutate.__name__}_{name}"
        path.write_bytes(mutate(bases[name], rng))
        yield i, path


def base_onnx(folder: Path, tiny: Path) -> dict[str, bytes]:
    """srgan's dynamic export of the tiny model, and the int8 metadata on it."""
    target = folder / "tiny.onnx"
    cli(["export", "--model", str(tiny), "--onnx", str(target), "--overwrite"])
    return {"tiny.onnx": target.read_bytes()}


def base_manifest(folder: Path, probe: Path, tiny: Path) -> bytes:
    """A real manifest of three files (one failed)."""
    inputs = folder / "manifest_inputs"
    inputs.mkdir(exist_ok=True)
    for name in ("a.png", "b.png"):
        (inputs / name).write_bytes(probe.read_bytes())
    (inputs / "c.png").write_bytes(b"not an image")
    manifest = folder / "base.jsonl"
    cli(["upscale", str(inputs), "-o", str(folder / "manifest_out"), "--model", str(tiny), "--manifest",
         str(manifest), "--precision", "fp32"])
    return manifest.read_bytes()


class _WorkStarted(Exception):
    """`export --int8` got past its up-front checks (the expensive part is not what is fuzzed)."""


def check_int8(work: Path, tiny: Path, images: dict[str, bytes], rng: np.random.Generator,
               check: Callable[..., None], cases: int = 24) -> None:
    """`export --int8` on calibration folders holding one corrupted image among good ones: refused
    in one line before any work, or reaching the work (stopped there)."""
    from srgan.export import quantize

    quantize.export_onnx = lambda *a, **k: (_ for _ in ()).throw(_WorkStarted())
    for i, path in corrupted(work / "images", images, IMAGE_MUTATIONS, cases, rng):
        folder = work / f"calibrate_{i}"
        folder.mkdir(exist_ok=True)
        for k in range(2):
            (folder / f"good{k}.png").write_bytes(images["rgb.png"])
        (folder / f"bad{path.suffix}").write_bytes(path.read_bytes())
        check("export --int8", path, _int8_cli, ["export", "--model", str(tiny), "--onnx", str(work / "q.onnx"),
                                                 "--int8", "--calibrate", str(folder), "--overwrite"])


def _int8_cli(argv: list[str]) -> int:
    try:
        return cli(argv)
    except _WorkStarted:
        return 0


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


# ---------------------------------------------------------------- the run
def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--images", type=int, default=240)
    parser.add_argument("--weights", type=int, default=160)
    parser.add_argument("--onnx", type=int, default=0, help="corrupted ONNX files (issue 28)")
    parser.add_argument("--manifests", type=int, default=0, help="corrupted manifests (issue 28)")
    parser.add_argument("--memory-mb", type=int, default=2048, help="address space allowed beyond the start")
    args = parser.parse_args()
    # a header may claim any size up to the pixel limit and some decoders then fill in what is missing:
    # a small limit keeps such cases fast (the limit itself is tested in test_imaging_io.py)
    os.environ.setdefault("SRGAN_MAX_PIXELS", str(1 << 18))
    rng = np.random.default_rng(args.seed)
    work = args.workdir
    (work / "images").mkdir(parents=True, exist_ok=True)
    (work / "weights").mkdir(exist_ok=True)
    tiny = srgan.save_model(srgan.create_model("srresnet_x4", blocks=1, width=8), work / "tiny.safetensors")
    probe = work / "probe.png"
    Image.new("RGB", (12, 10), (90, 120, 30)).save(probe)
    images, weights = base_images(rng), base_weights(work)
    cli(["upscale", str(probe), "--model", str(tiny), "-o", str(work / "warm.png"), "--precision", "fp32"])  # warm up
    onnx_bases = base_onnx(work, tiny) if args.onnx else {}
    manifest_bases = {"run.jsonl": base_manifest(work, probe, tiny)} if args.manifests else {}

    with open("/proc/self/status") as status:  # the limit counts from what the imports already mapped
        vm = next(int(line.split()[1]) for line in status if line.startswith("VmSize:")) * 1024
    limit = vm + (args.memory_mb << 20)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    logging.disable(logging.CRITICAL)  # the one-line messages are not what is checked here

    failures: list[dict[str, str]] = []
    cases = refused = 0
    start = time.perf_counter()

    def check(kind: str, path: Path, run: Callable[..., object], *args: object,
              expected: type[Exception] = SrganError, **kwargs: object) -> None:
        nonlocal cases, refused
        cases += 1
        try:
            result = run(*args, **kwargs)
            if isinstance(result, int) and result not in (0, 1, 2):
                failures.append({"kind": kind, "file": path.name, "error": f"exit code {result}"})
            refused += result == 2
        except expected:
            refused += 1
        except BaseException as exc:  # noqa: BLE001 - anything but a one-line SrganError is a failure
            failures.append({"kind": kind, "file": path.name, "error": "".join(
                traceback.format_exception_only(exc)).strip()[-400:]})

    for _, path in corrupted(work / "images", images, IMAGE_MUTATIONS, args.images, rng):
        check("upscale", path, cli, ["upscale", str(path), "--model", str(tiny), "-o", str(work / "out.png"),
                                     "--overwrite", "--precision", "fp32"])
        # what the web server does with an upload: its header read once against --max-pixels, then decoded
        check("serve decode", path, decode_image, path.read_bytes(), path.name, limit=1 << 18)
    for i, path in corrupted(work / "weights", weights, WEIGHT_MUTATIONS, args.weights, rng):
        check("load_model", path, srgan.load_model, path)
        if i % 8 == 0:
            check("upscale --model", path, cli, ["upscale", str(probe), "--model", str(path), "-o",
                                                 str(work / "out_w.png"), "--overwrite", "--precision", "fp32"])
    if args.onnx:
        (work / "onnx").mkdir(exist_ok=True)
        for i, path in corrupted(work / "onnx", onnx_bases, ONNX_MUTATIONS, args.onnx, rng):
            backend = "openvino" if i % 8 == 7 and _installed("openvino") else "onnxruntime"
            check(f"upscale --model .onnx ({backend})", path, cli, [
                "upscale", str(probe), "--model", str(path), "-o", str(work / "out_o.png"), "--overwrite",
                "--backend", backend])
            if i % 4 == 0:
                check("inspect .onnx", path, cli, ["inspect", str(path)])
    if args.manifests:
        (work / "manifests").mkdir(exist_ok=True)
        for _, path in corrupted(work / "manifests", manifest_bases, MANIFEST_MUTATIONS, args.manifests, rng):
            check("upscale --summary", path, cli, ["upscale", "--summary", str(path)])
        check_int8(work, tiny, images, rng, check)
    leftovers = sorted(p.name for p in work.rglob("*.tmp"))
    print("\n" + json.dumps({"cases": cases, "refused": refused, "failures": failures, "leftovers": leftovers,
                      "seconds": round(time.perf_counter() - start, 1),
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
                      "limit_mb": limit >> 20}))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
