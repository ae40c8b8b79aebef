"""The benchmark runs and prints the figures it promises (no timing is asserted here)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import ROOT, shared_path

KEYS = ("load_s", "cold_process_s", "text_s", "gen_1x196_10_s", "gen_1x196_18_s", "gen_8x196_10_s",
        "gen_1x48_10_s", "inpaint_1x196_s", "rss_after_load_mb", "rss_peak_mb")


def test_speed_benchmark_prints_every_figure_for_both_paths(reference_dir):
    done = subprocess.run([sys.executable, "-m", "bench.speed", "--tiny", "--threads", "1"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    for key in KEYS:
        assert report[key] > 0 and report["fast_" + key] > 0, key
    for key in ("floor_1x196_10_s", "floor_8x196_10_s", "floor_1x48_10_s"):  # the exact path's fp32 floor
        assert 0 < report[key] < report["gen_" + key.removeprefix("floor_")], key
    assert report["gen_1x196_10_directed_s"] > 0 and report["directed_over_free"] > 0  # the directed case
    assert report["threads"] == 1 and report["device"] == "cpu" and report["torch"]
    assert 0.98 <= report["fast_token_agreement"] <= 1.0


def test_fast_path_generates_the_same_shapes(reference_dir):
    from model_core import GenerationSettings, MoMask

    model = MoMask.load(reference_dir / "checkpoints", reference_dir / "clip" / "ViT-B-32.pt", fast=True)
    motion = model.generate(["a person walks", "a person jumps"], frames=[40, 24], settings=GenerationSettings(steps=3))
    assert motion.joints.shape == (2, 40, 22, 3) and motion.lengths == [40, 24]


def test_serve_benchmark_prints_requests_per_second_for_1_4_and_8_clients(reference_dir):
    done = subprocess.run([sys.executable, "-m", "bench.serve", "--tiny", "--requests", "8", "--steps", "3"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    for name in ("batched_requests_per_s", "unbatched_requests_per_s"):
        assert set(report[name]) == {"1", "4", "8"} and all(v > 0 for v in report[name].values())
    assert report["batched_vs_unbatched_8_clients"] > 0 and report["batched_8_clients_vs_1"] > 0


def test_load_benchmark_reports_idle_and_loaded_side_by_side(reference_dir):
    """bench.load on the small weights, one block: figures per policy, the default one applied."""
    done = subprocess.run([sys.executable, "-m", "bench.load", "--tiny", "--repeats", "1", "--policies",
                           "default,spin,one_thread"], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert set(report["policies"]) == {"default", "spin", "one_thread"}
    for figures in report["policies"].values():
        assert figures["idle_median_s"] > 0 and figures["loaded_worst_s"] > 0 and figures["loaded_worst_over_idle"] > 0
    assert report["policies"]["default"]["model_core_policy"] == "applied"
    assert report["policies"]["spin"]["model_core_policy"] == "too late" and report["policies"]["spin"]["env"] == {}
    assert report["policies"]["one_thread"]["threads"] == 1


def test_bake_speed_benchmark_runs_and_prints_its_figures(reference_dir):
    """bench.bake_speed, one repeat: the README quotes its figures, so it must keep running."""
    rig = shared_path("rigs", "mpfb_mixamo_tpose_cm.fbx")
    done = subprocess.run([sys.executable, "-m", "bench.bake_speed", "--repeat", "1", "--rig", str(rig)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["frames"] == 196 and report["bones"] > 20
    for key in ("no_foot_lock", "foot_lock"):
        assert set(report[key]) == {"read_rig_s", "retarget_s", "keyframes_s", "bake_s"}
        assert all(v > 0 for v in report[key].values()), key
    assert report["prompt_to_keyframes_warm_s"] > 0
