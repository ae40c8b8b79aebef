"""Bake speed: 196 frames onto a ~60-bone rig (target <= 50 ms), and prompt -> keyframes, warm model.

    python -m bench.bake_speed [--rig RIG] [--repeat 5]

Prints one JSON object (median seconds over repeats). Needs ../shared (rigs, motions, reference).
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rig", default=str(SHARED / "rigs" / "mpfb_mixamo_tpose_cm.fbx"))
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    import bpy
    import numpy as np

    import momask_blender
    from momask_blender.rig.retarget import RetargetOptions, retarget
    from momask_blender.scene.characters import import_rig, pick_armature, select_only
    from momask_blender.scene.keyframes import write_bake
    from momask_blender.scene.sources import load_npy

    import_rig(Path(args.rig))
    obj = pick_armature(None)
    select_only(obj)
    momask_blender.register()
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 20, 1.0  # 196 model frames -> 196 keyed frames
    joints = load_npy(SHARED / "motions" / "humanml3d_000612.npy")[0][:196]
    result: dict = {"rig": Path(args.rig).name, "bones": len(obj.data.bones), "frames": 196}

    def timed(fn):
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t)
        return statistics.median(times), out

    from momask_blender.rig.plan import plan_rig
    from momask_blender.scene.bone_maps import resolve_bone_map
    from momask_blender.scene.rig_reader import read_rig

    for lock in (False, True):
        def run_prepare():
            return plan_rig(read_rig(obj), resolve_bone_map(obj))

        t_plan, plan = timed(run_prepare)
        opts = RetargetOptions(fps=20.0, foot_lock=lock)
        t_ret, bake = timed(lambda plan=plan, opts=opts: retarget(joints, plan, opts))
        t_key, _ = timed(lambda bake=bake: write_bake(obj, bake, "bench", 1))
        key = "foot_lock" if lock else "no_foot_lock"
        result[key] = {"read_rig_s": round(t_plan, 4), "retarget_s": round(t_ret, 4),
                       "keyframes_s": round(t_key, 4), "bake_s": round(t_plan + t_ret + t_key, 4)}

    ref = SHARED / "reference"
    if ref.is_dir():
        kw = dict(prompt="a person walks forward", seconds=9.8, seed=1, steps=10,
                  checkpoints=str(ref / "checkpoints"), clip=str(ref / "clip" / "ViT-B-32.pt"))
        bpy.ops.momask.generate(**kw)  # loads and caches the model
        t_gen, _ = timed(lambda: bpy.ops.momask.generate(**kw))
        result["prompt_to_keyframes_warm_s"] = round(t_gen, 4)
        result["prompt_to_keyframes_note"] = "reference (small) checkpoints, 10 steps, 196 frames"
    print(json.dumps(result))
    return int(not np.isfinite(result["no_foot_lock"]["bake_s"]))


if __name__ == "__main__":
    raise SystemExit(main())
