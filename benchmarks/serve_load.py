"""`srgan serve` under load, as ratios measured in one run (issue 11).

    python benchmarks/serve_load.py                       # shipped model, 64x64 crops, 6 clients
    python benchmarks/serve_load.py --requests 100 --seconds 60 --model tiny.safetensors

Starts `srgan serve` on 127.0.0.1 (a free port) in its own process with one worker and a short queue,
then runs CLIENTS concurrent clients from a second process for at most SECONDS seconds and REQUESTS
answered images. There are more clients than the server admits (workers + queue), so some requests
are over capacity: each must be answered 429 at once (a client then retries after BACKOFF seconds),
none may get a 5xx or a broken connection. The same crops are upscaled by `srgan.api.upscale` in a
plain loop in this process before and after the load, with the server idle; the server's throughput
is compared with their mean, so the background load of a shared machine weighs on both alike. The
loop runs once in a thread of its own, as the server runs the model (the comparison that counts),
and once in the main thread: on a 2-core machine already busy, PyTorch's OpenMP threads made the
main-thread loop up to 3x slower, which would flatter the server. The
server's resident memory is read from /proc after start-up, after a warm-up, and at the end.
Only loopback addresses are used, and every loop is bounded in count and time.

With `--slow-clients N` (issue 28; default 9, the server's default workers + queue) N more
connections send their headers and then one byte a second, reconnecting when the server answers
them: before issue 28 they held every queue slot and the normal clients got only 429. Now they
hold no slot and are answered 408 once under the minimum upload rate; the normal clients' share
of the throughput is reported with and without them.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np

TARGETS = {"throughput / direct": 0.85, "RSS growth": 0.10, "throughput with slow clients / without": 0.8}
T = TypeVar("T")
BOUNDARY = "srgan-serve-load-boundary"


def crops(size: int, count: int) -> list[bytes]:
    """`count` size x size PNG crops of scikit-image's astronaut (shipped with scikit-image, no download)."""
    from PIL import Image
    from skimage import data

    image = data.astronaut()
    step = max(1, (image.shape[0] - size) // max(1, count - 1))
    out = []
    for i in range(count):
        y = x = min(i * step, image.shape[0] - size)
        buffer = io.BytesIO()
        Image.fromarray(image[y:y + size, x:x + size]).save(buffer, "PNG")
        out.append(buffer.getvalue())
    return out


def multipart(png: bytes, name: str) -> bytes:
    head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            "Content-Type: image/png\r\n\r\n").encode()
    return head + png + f"\r\n--{BOUNDARY}--\r\n".encode()


# ---------------------------------------------------------------- the client process
def run_clients(url: str, clients: int, requests: int, seconds: float, backoff: float, size: int, count: int) -> dict:
    """CLIENTS threads, each with one keep-alive connection, until REQUESTS images are answered or
    SECONDS pass. Returns every answer as (status, seconds) and the connection errors."""
    host, port = re.match(r"http://([^:/]+):(\d+)", url).groups()
    bodies = [multipart(png, f"crop{i}.png") for i, png in enumerate(crops(size, count))]
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    lock = threading.Lock()
    answers: list[tuple[int, float]] = []
    errors: list[str] = []
    done = 0
    deadline = time.monotonic() + seconds

    def client(index: int) -> None:
        nonlocal done
        connection = http.client.HTTPConnection(host, int(port), timeout=120)
        sent = index
        while time.monotonic() < deadline:
            with lock:
                if done >= requests:
                    break
            start = time.perf_counter()
            try:
                connection.request("POST", "/api/upscale", bodies[sent % len(bodies)], headers)
                response = connection.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as exc:
                with lock:
                    errors.append(type(exc).__name__)
                connection.close()
                connection = http.client.HTTPConnection(host, int(port), timeout=120)
                continue
            with lock:
                answers.append((status, time.perf_counter() - start))
                done += status == 200
            if status == 429:
                time.sleep(backoff)
            else:
                sent += 1
        connection.close()

    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"answers": answers, "errors": errors, "seconds": time.perf_counter() - start}


# ---------------------------------------------------------------- slow clients (slowloris uploads)
def trickle(url: str, stop: threading.Event, tally: Counter) -> None:
    """One connection at a time: a whole request head, then a byte a second of a big body, until
    the server answers (counted by status) or `stop`; then again."""
    import socket

    host, port = re.match(r"http://([^:/]+):(\d+)", url).groups()
    head = (f"POST /api/upscale HTTP/1.1\r\nHost: {host}\r\nContent-Type: multipart/form-data; "
            f"boundary={BOUNDARY}\r\nContent-Length: 1000000\r\n\r\n--{BOUNDARY}\r\n").encode()
    while not stop.is_set():
        try:
            with socket.create_connection((host, int(port)), timeout=1) as sock:
                sock.sendall(head)
                tally["opened"] += 1
                while not stop.is_set():
                    try:
                        reply = sock.recv(64)
                    except TimeoutError:  # nothing yet: send the next byte
                        sock.sendall(b"x")
                        continue
                    tally[reply.split(b" ")[1].decode() if reply.startswith(b"HTTP/") else "closed"] += 1
                    break
        except OSError:
            tally["error"] += 1
            stop.wait(0.5)


def with_slow_clients(count: int, url: str, work: Callable[[], T]) -> tuple[T, Counter]:
    """`work()` while `count` slow clients trickle their uploads; their outcomes by status."""
    stop, tally = threading.Event(), Counter()
    threads = [threading.Thread(target=trickle, args=(url, stop, tally), daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)  # all connected and sending before the normal clients start
    try:
        return work(), tally
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)


# ---------------------------------------------------------------- the main process
def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def start_server(model: str, workers: int, queue: int) -> tuple[subprocess.Popen, str]:
    command = [sys.executable, "-m", "srgan", "serve", "--host", "127.0.0.1", "--port", "0", "--model", model,
               "--workers", str(workers), "--queue", str(queue)]
    server = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    for line in server.stderr:
        match = re.search(r"srgan serve: (http://\S+) ", line)
        if match:
            threading.Thread(target=server.stderr.read, daemon=True).start()  # keep its log pipe drained
            return server, match.group(1)
        if time.monotonic() > deadline:
            break
    server.kill()
    raise SystemExit(f"the server did not start: {' '.join(command)}")


def direct_rate(model: str, size: int, count: int, seconds: float, *, in_thread: bool) -> float:
    """Images per second of `srgan.api.upscale` in a loop over the same crops (already decoded), in the
    main thread or, as the server runs it, in a thread of its own."""
    from concurrent.futures import ThreadPoolExecutor

    from PIL import Image

    import srgan

    images = [Image.open(io.BytesIO(png)).convert("RGB") for png in crops(size, count)]

    def loop() -> float:
        srgan.upscale(images[0], model)  # load and warm up
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            srgan.upscale(images[done % len(images)], model)
            done += 1
        return done / (time.perf_counter() - start)

    if not in_thread:
        return loop()
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(loop).result()


def cpu_name() -> str:
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    name = re.search(r"model name\s*:\s*(.+)", text)
    return f"{name.group(1).strip() if name else 'unknown CPU'}, {os.cpu_count()} cores, " \
           f"avx512_bf16 {'yes' if 'avx512_bf16' in text else 'no'}"


def percentiles(values: list[float]) -> str:
    if not values:
        return "-"
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return f"{p50 * 1000:.0f} / {p95 * 1000:.0f} / {p99 * 1000:.0f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="srresnet_x4", help="shipped name or weights file (default srresnet_x4)")
    parser.add_argument("--size", type=int, default=64, help="side of the input crops (default 64)")
    parser.add_argument("--images", type=int, default=8, help="distinct crops (default 8)")
    parser.add_argument("--clients", type=int, default=6, help="concurrent clients (default 6)")
    parser.add_argument("--workers", type=int, default=1, help="server inference threads (default 1)")
    parser.add_argument("--queue", type=int, default=2, help="server queue (default 2)")
    parser.add_argument("--requests", type=int, default=500, help="images answered in all (default 500)")
    parser.add_argument("--seconds", type=float, default=300, help="longest the load runs in all (default 300)")
    parser.add_argument("--rounds", type=int, default=5, help="load rounds, each after direct loops (default 5)")
    parser.add_argument("--direct-seconds", type=float, default=5, help="each direct loop's duration (default 5)")
    parser.add_argument("--backoff", type=float, default=0.1, help="a refused client's pause (default 0.1 s)")
    parser.add_argument("--slow-clients", type=int, default=9,
                        help="connections trickling a byte a second during a last round (default 9; 0: none)")
    parser.add_argument("--client", metavar="URL", help=argparse.SUPPRESS)  # the client process
    args = parser.parse_args()
    if args.client:
        print(json.dumps(run_clients(args.client, args.clients, args.requests, args.seconds, args.backoff,
                                     args.size, args.images)))
        return 0

    import torch

    print(f"CPU: {cpu_name()}; torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    print(f"model {args.model}, {args.images} crops of {args.size}x{args.size} (astronaut), server: {args.workers} "
          f"worker(s), queue {args.queue} -> capacity {args.workers + args.queue}; {args.clients} clients; "
          f"{args.rounds} rounds of direct loops then load")
    server, url = start_server(args.model, args.workers, args.queue)
    direct: dict[str, list[float]] = {"thread": [], "main": []}
    answers, errors, seconds = [], [], 0.0
    try:
        rss_start = rss_mb(server.pid)
        warm = run_clients(url, 1, 20, 60, args.backoff, args.size, args.images)
        assert all(status == 200 for status, _ in warm["answers"]), warm
        rss_warm = rss_mb(server.pid)
        for index in range(args.rounds):
            for mode, rates in direct.items():
                rates.append(direct_rate(args.model, args.size, args.images, args.direct_seconds,
                                         in_thread=mode == "thread"))
            budget = args.requests // args.rounds + (index < args.requests % args.rounds)
            command = [sys.executable, __file__, "--client", url, "--clients", str(args.clients), "--requests",
                       str(budget), "--seconds", str(args.seconds / args.rounds), "--backoff", str(args.backoff),
                       "--size", str(args.size), "--images", str(args.images)]
            load = json.loads(subprocess.run(command, check=True, capture_output=True, text=True,
                                             timeout=args.seconds + 120).stdout)
            answers += load["answers"]
            errors += load["errors"]
            seconds += load["seconds"]
            done = sum(status == 200 for status, _ in load["answers"])
            served_rate = done / load["seconds"]
            print(f"  round {index + 1}: direct {direct['thread'][-1]:.2f} img/s in a thread, "
                  f"{direct['main'][-1]:.2f} in the main thread; server {served_rate:.2f} req/s "
                  f"({served_rate / direct['thread'][-1]:.2f}x)", flush=True)
        slow_rate, slow = None, Counter()
        if args.slow_clients:
            budget = max(1, args.requests // args.rounds)
            command = [sys.executable, __file__, "--client", url, "--clients", str(args.clients), "--requests",
                       str(budget), "--seconds", str(args.seconds / args.rounds), "--backoff", str(args.backoff),
                       "--size", str(args.size), "--images", str(args.images)]
            load, slow = with_slow_clients(args.slow_clients, url, lambda: json.loads(subprocess.run(
                command, check=True, capture_output=True, text=True, timeout=args.seconds + 120).stdout))
            slow_rate = sum(status == 200 for status, _ in load["answers"]) / load["seconds"]
            errors += load["errors"]
            print(f"  with {args.slow_clients} slow clients: server {slow_rate:.2f} req/s; slow connections "
                  f"{dict(sorted(slow.items()))}", flush=True)
        rss_end = rss_mb(server.pid)
        metrics = http.client.HTTPConnection(*re.match(r"http://([^:/]+):(\d+)", url).groups(), timeout=10)
        metrics.request("GET", "/metrics")
        served = re.findall(r'srgan_upscale_requests_total\{status="(\d+)"\} (\S+)',
                            metrics.getresponse().read().decode())
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()

    statuses = Counter(status for status, _ in answers)
    ok = [t for status, t in answers if status == 200]
    busy = [t for status, t in answers if status == 429]
    rate = len(ok) / seconds
    baseline = float(np.mean(direct["thread"]))  # the model run as the server runs it: the fair comparison
    growth = (rss_end - rss_warm) / rss_warm
    print(f"direct srgan.api.upscale loop: {baseline:.2f} img/s in a thread, {np.mean(direct['main']):.2f} in the "
          f"main thread (means of {args.rounds} rounds)")
    print(f"server: {len(ok)} images in {seconds:.1f} s = {rate:.2f} req/s = {rate / baseline:.2f}x the direct loop "
          f"in a thread ({rate / np.mean(direct['main']):.2f}x the main-thread loop); {len(answers)} answers")
    print(f"status counts: {dict(sorted(statuses.items()))}; connection errors: {len(errors)}; "
          f"server's /metrics (with the warm-up): {dict(served)}")
    print(f"latency p50 / p95 / p99: 200 {percentiles(ok)}; 429 {percentiles(busy)}")
    print(f"server RSS: {rss_start:.0f} MB after start-up, {rss_warm:.0f} MB after 20 warm-up requests, "
          f"{rss_end:.0f} MB after the load ({growth:+.1%} over {len(answers)} requests)")
    checks = {
        "no 5xx and no broken connection": not any(s >= 500 for s in statuses) and not errors,
        "every over-capacity request answered 429": set(statuses) <= {200, 429} and statuses[429] > 0,
        f"RSS growth < {TARGETS['RSS growth']:.0%}": growth < TARGETS["RSS growth"],
        f"throughput >= {TARGETS['throughput / direct']:.2f}x the direct loop": rate / baseline >= TARGETS[
            "throughput / direct"],
    }
    if slow_rate is not None:
        ratio = slow_rate / (rate or 1e-9)
        print(f"with {args.slow_clients} slow clients: {slow_rate:.2f} req/s = {ratio:.2f}x the rate without them")
        checks[f"{args.slow_clients} slow clients keep >= {TARGETS['throughput with slow clients / without']:.1f}x "
               "the throughput, and are answered 408"] = (
            ratio >= TARGETS["throughput with slow clients / without"] and slow["408"] > 0)
    for name, passed in checks.items():
        print(f"  {'met   ' if passed else 'MISSED'} {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
