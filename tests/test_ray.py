"""`srgan.integrations.ray` on a local Ray instance: two CPU actors, each holding the model, do every
file once, write what a plain run writes, and a second run finds nothing left to do."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import srgan
from srgan import api

ray = pytest.importorskip("ray.data", reason='Ray Data is not installed (pip install "srgan[ray]"; the test '
                                             "extra installs it)")

SRC = Path(srgan.__file__).resolve().parents[1]
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")  # Ray's own


def test_ray_data_upscales_with_two_cpu_actors(tmp_path, tiny_weights):
    import ray

    from srgan.integrations.ray import upscale_with_ray

    rng = np.random.default_rng(0)
    (tmp_path / "in").mkdir()
    sources = []
    for i in range(10):
        h, w = rng.integers(6, 30, 2)
        sources.append(tmp_path / "in" / f"im{i}.png")
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(sources[-1])
    options = api.UpscaleOptions(model=tiny_weights, device="cpu")

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}})
    ray.data.DataContext.get_current().wait_for_min_actors_s = 120  # both actors up before work is handed out
    try:
        totals = upscale_with_ray([tmp_path / "in"], tmp_path / "ray", options=options, actors=2, batch_size=2,
                                  manifest=tmp_path / "run.jsonl")
        again = upscale_with_ray([tmp_path / "in"], tmp_path / "ray", options=options, actors=2, batch_size=2)
    finally:
        ray.shutdown()
    assert (totals.files, totals.done, totals.failures) == (10, 10, [])
    assert totals.processes == 2  # two actors, each with its own model
    assert again.files == 0  # outputs kept: a rerun resumes
    assert api.manifest_summary([tmp_path / "run.jsonl"]).done == 10

    api.upscale_files([tmp_path / "in"], tmp_path / "plain", options=options)
    for source in sources:
        name = f"{source.stem}_x4.png"
        with Image.open(tmp_path / "ray" / name) as a, Image.open(tmp_path / "plain" / name) as b:
            assert np.array_equal(np.asarray(a), np.asarray(b)), name
