"""The README's first command: a sentence becomes animation on a human rig, headless.

    python -m momask_blender.demo                        # what `make demo` runs
    python -m momask_blender.demo --prompt "a person jumps" --seconds 3 --steps 10
    python -m momask_blender.demo --source ../shared/motions/humanml3d_000612.npy   # bake a file

Builds Blender's human metarig (Rigify's, made procedurally; or `--rig FILE`), generates the
prompt with the first weights it finds, bakes it onto the rig and writes `demo/out.blend`,
`demo/out.bvh` and `demo/out.png` (a strip of the rig's poses over time). Where the weights are
looked for, in order (`find_weights`):

1. the add-on's preferences (checkpoint folder and CLIP file), or the files the preferences'
   buttons installed into the extension's user folder, when the extension is installed;
2. `MOMASK_CHECKPOINTS` (the folder holding `t2m/`) with `MOMASK_CLIP` (OpenAI's ViT-B-32.pt;
   looked for next to the checkpoints and in ~/.cache/clip when not set);
3. the official download beside the checkout: `../checkpoints` with `../ViT-B-32.pt`;
4. `../shared/reference` beside the checkout (small seeded models: the motion is not real).

With none of them, small random weights are made in the official layout (in `.cache/`, outside
git) and the outputs are named `out_RANDOM_WEIGHTS_meaningless.*`: the pipeline runs end to end,
the motion means nothing. Prints a JSON summary last (weights, frames, fps, files, seconds).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from model_core.settings import GenerationSettings

from .errors import MomaskError
from .setup.weights import CLIP_NAME, Weights, checkpoints_ok, clip_candidates, find_weights, first_file

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PROMPT = "a person walks forward and waves"
RANDOM_TAG = "RANDOM_WEIGHTS_meaningless"
RANDOM_CACHE = ROOT / ".cache" / "demo_random_weights"

HOW_TO_INSTALL = """\
To get the released MoMask weights:
  - run the official script from https://github.com/EricGuo5513/momask-codes
    (`bash prepare/download_models.sh`): it makes checkpoints/t2m/...;
  - download OpenAI's CLIP ViT-B/32 file, ViT-B-32.pt:
    https://openaipublic.azureedge.net/clip/models/40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt
  - then either  export MOMASK_CHECKPOINTS=/path/to/checkpoints MOMASK_CLIP=/path/to/ViT-B-32.pt
    or put them beside this checkout as ../checkpoints and ../ViT-B-32.pt,
    or in Blender use the add-on's preferences (Install from file / Download)."""


def make_random_weights(cache: Path | None = None) -> Weights:
    """Small random weights in the official layout (made once in `cache`), from model_core's test helpers."""
    from model_core.testing.random_weights import demo_weights

    cache = Path(cache) if cache is not None else RANDOM_CACHE
    checkpoints, clip = demo_weights(cache)
    readme = cache / "README_RANDOM_WEIGHTS.txt"
    if not readme.is_file():
        readme.write_text("These are RANDOM weights made by `make demo` so that the pipeline can run without the "
                          "released\nMoMask files. Motions generated with them are meaningless.\n\n"
                          + HOW_TO_INSTALL + "\n")
    return Weights(checkpoints, clip, "random", random=True)


def banner(lines: Sequence[str]) -> str:
    bar = "!" * 78
    return "\n".join([bar, *(f"!! {line}" for line in lines), bar])


def random_warning(name: str = f"out_{RANDOM_TAG}") -> str:
    return banner(["NO MOMASK WEIGHTS FOUND: USING SMALL RANDOM WEIGHTS.",
                   "THE MOTION IS MEANINGLESS NOISE until the released weights are installed.",
                   f"Output files are named {name}.*", "",
                   *HOW_TO_INSTALL.splitlines()])


def reference_warning(w: Weights) -> str:
    return banner([f"Using the small seeded test models in {w.checkpoints.parent}:",
                   "they exercise the pipeline; THE MOTION IS NOT A REAL MOTION.", "",
                   *HOW_TO_INSTALL.splitlines()])


# ----------------------------------------------------------------------------- Blender


def preference_candidates(bpy) -> list[tuple[str, str]]:
    """(checkpoints, clip) pairs from an installed/enabled MoMask add-on: its preferences, then its user folder."""
    out: list[tuple[str, str]] = []
    for addon in bpy.context.preferences.addons:
        module = addon.module
        if module.rpartition(".")[2] not in ("momask", "momask_blender"):
            continue
        prefs = addon.preferences
        if prefs is not None and getattr(prefs, "checkpoints", ""):
            out.append((bpy.path.abspath(prefs.checkpoints), bpy.path.abspath(getattr(prefs, "clip", ""))))
        if module.startswith("bl_ext."):
            try:
                root = Path(bpy.utils.extension_path_user(module, create=False))
            except (ValueError, RuntimeError, TypeError):
                continue
            out.append((str(root / "checkpoints"), str(root / "clip" / CLIP_NAME)))
    return out


def sample_rig(bpy, obj, frame_offsets: Sequence[int], frame_start: int):
    """World positions of the mapped bones' heads (and the leaf bones' tails) at those frames, plus
    the segments between them and their sides: what `strip.render_strip` draws."""
    from .jobs.bake import BONE_MAP_PROPERTY
    from .rig.bone_map import map_from_json
    from .rig.skeleton import INDEX, JOINTS, PARENTS
    from .scene.strip import CENTER, LEFT, RIGHT

    bmap = map_from_json(obj[BONE_MAP_PROPERTY])
    mapped = [j for j in range(22) if JOINTS[j] in bmap]
    idx = {j: k for k, j in enumerate(mapped)}
    segments, kinds = [], []

    def side(j):
        name = JOINTS[j]
        return LEFT if name.startswith("left") else RIGHT if name.startswith("right") else CENTER

    for j in mapped:
        p = PARENTS[j]
        while p >= 0 and p not in idx:
            p = PARENTS[p]
        if p >= 0:
            segments.append((idx[p], idx[j]))
            kinds.append(side(j))
    leaves = [INDEX[n] for n in ("left_foot", "right_foot", "left_wrist", "right_wrist", "head")
              if INDEX[n] in idx]
    tails = {}
    for j in leaves:
        tails[j] = len(mapped) + len(tails)
        if JOINTS[j] != "head":
            segments.append((idx[j], tails[j]))
            kinds.append(side(j))
    scene = bpy.context.scene
    points = np.empty((len(frame_offsets), len(mapped) + len(tails), 3))
    for f, off in enumerate(frame_offsets):
        scene.frame_set(frame_start + int(off))
        mw = np.array(obj.matrix_world)
        for j in mapped:
            pb = obj.pose.bones[bmap[JOINTS[j]]]
            points[f, idx[j]] = mw[:3, :3] @ np.array(pb.head) + mw[:3, 3]
            if j in tails:
                points[f, tails[j]] = mw[:3, :3] @ np.array(pb.tail) + mw[:3, 3]
    head = None
    if INDEX["head"] in tails:
        head = (idx[INDEX["head"]], tails[INDEX["head"]])
    pairs = [(idx[INDEX[f"left_{n}"]], idx[INDEX[f"right_{n}"]]) for n in ("hip", "shoulder")
             if INDEX[f"left_{n}"] in idx and INDEX[f"right_{n}"] in idx]
    facing = None
    if pairs:
        from .scene.strip import body_facing

        facing = body_facing(points, [a for a, _ in pairs], [b for _, b in pairs])
    return points, segments, kinds, head, facing


# ----------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m momask_blender.demo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--prompt", default=DEFAULT_PROMPT)
    p.add_argument("--seconds", type=float, default=6.0, help="length of the motion (0: the model's guess)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=GenerationSettings().steps, help="remask steps (official default)")
    p.add_argument("--source", help="bake this motion (.bvh or HumanML3D .npy) instead of generating")
    p.add_argument("--rig", help="a character file to use instead of the metarig (.glb .fbx .blend .vrm ...)")
    p.add_argument("--checkpoints", help="the checkpoint folder (overrides the search)")
    p.add_argument("--clip", help="OpenAI's ViT-B-32.pt (with --checkpoints)")
    p.add_argument("--random-weights", action="store_true", help="use the random demo weights even if others exist")
    p.add_argument("--out", default=str(ROOT / "demo" / "out"),
                   help="output path without suffix: writes OUT.blend, OUT.bvh, OUT.png (default: demo/out)")
    p.add_argument("--frames", type=int, default=8, help="poses in the picture")
    p.add_argument("--fps", type=float, default=30.0, help="scene frame rate")
    p.add_argument("--device", default="cpu")
    return p


def choose_weights(args, prefs: Sequence[tuple[str, str]]) -> Weights:
    if args.random_weights:
        return make_random_weights()
    if args.checkpoints:
        c = Path(args.checkpoints).expanduser()
        clip = Path(args.clip).expanduser() if args.clip else first_file(clip_candidates(c, os.environ, Path.home()))
        if not checkpoints_ok(c) or clip is None or not clip.is_file():
            raise MomaskError(f"--checkpoints {c} / --clip {args.clip or '(not found)'}: not a complete model")
        return Weights(c, clip, "--checkpoints")
    return find_weights(os.environ, ROOT, prefs, Path.home()) or make_random_weights()


def run(args) -> dict:
    started = time.perf_counter()
    seconds: dict[str, float] = {}

    def stage(name: str, t0: float) -> float:
        t = time.perf_counter()
        seconds[name] = round(t - t0, 3)
        return t

    import bpy  # noqa: F401  (before torch: Blender as a module)

    from . import register
    from .jobs import bake
    from .scene import strip
    from .scene.characters import build_metarig, import_rig, pick_armature

    t = stage("import_s", started)
    weights = None
    if not args.source:
        weights = choose_weights(args, preference_candidates(bpy))
        for note in weights.notes:
            print(f"note: {note}", file=sys.stderr)
        if weights.random:
            print(random_warning(f"{Path(args.out).name}_{RANDOM_TAG}"), file=sys.stderr, flush=True)
        elif weights.origin == "reference":
            print(reference_warning(weights), file=sys.stderr, flush=True)
        print(f"weights: {weights.origin}: {weights.checkpoints} + {weights.clip}", file=sys.stderr, flush=True)
        t = stage("find_weights_s", t)
    if args.rig:
        import_rig(Path(args.rig).expanduser().resolve())
        obj, rig_kind = pick_armature(None), Path(args.rig).name
    else:
        obj, rig_kind = build_metarig()
    for o in bpy.context.view_layer.objects:
        o.select_set(False)
    obj.select_set(True)
    bpy.context.view_layer.objects.active = obj
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = int(round(args.fps)), round(args.fps) / args.fps
    scene.frame_start = 1
    scene.frame_set(1)
    t = stage("build_rig_s", t)
    register()
    gen = None
    if not args.source:
        official = GenerationSettings()
        gen = bake.Generation(prompt=args.prompt, seconds=args.seconds or None, seed=args.seed, variations=1,
                              steps=args.steps, guidance=official.guidance,
                              residual_guidance=official.residual_guidance, temperature=official.temperature,
                              topk=official.topk, checkpoints=str(weights.checkpoints), clip=str(weights.clip),
                              device=args.device)
    job, actions = bake.run(bpy.context, obj, prompt=args.prompt if not args.source else "", generation=gen,
                            source_path=str(Path(args.source).expanduser().resolve()) if args.source else "")
    for k, v in job.timings.items():
        seconds[k] = round(v, 3)
    t = time.perf_counter()
    bake = job.bakes[0]
    frame_end = job.frame_start + bake.frames - 1
    scene.frame_end = frame_end

    out = Path(args.out).expanduser()
    if not out.is_absolute():
        out = Path.cwd() / out
    if weights is not None and weights.random:
        out = out.with_name(f"{out.name}_{RANDOM_TAG}")
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = {"blend": out.with_suffix(".blend"), "bvh": out.with_suffix(".bvh"), "png": out.with_suffix(".png")}

    from model_core.motion.bvh import write_bvh

    write_bvh(str(paths["bvh"]), job.joints[0], job.source_fps if job.source is not None else 20.0)
    t = stage("export_bvh_s", t)

    offsets = strip.pick_frames(bake.frames, args.frames)
    points, segments, kinds, head, facing = sample_rig(bpy, obj, offsets, job.frame_start)
    what = f"'{args.prompt}'" if not args.source else Path(args.source).name
    if args.source:
        sub = f"baked from {Path(args.source).name} onto the {rig_kind}"
    else:
        sub = f"{weights.origin} weights, seed {args.seed}, {args.steps} steps, on the {rig_kind}"
    warning = ""
    if weights is not None and weights.random:
        warning = "RANDOM WEIGHTS: THIS MOTION IS MEANINGLESS. INSTALL THE RELEASED MOMASK WEIGHTS."
    elif weights is not None and weights.origin == "reference":
        warning = "SMALL TEST MODELS (../shared/reference): NOT A REAL MOTION."
    fps = job.options.fps
    img = strip.render_strip(points, segments, kinds,
                             labels=[f"F{job.frame_start + o}  {o / fps:.1f}S" for o in offsets], title=what,
                             subtitle=sub + f", {bake.frames} frames at {fps:g} fps; views turn with the body",
                             head=head, facing=facing, warning=warning)
    strip.write_png(paths["png"], img)
    t = stage("strip_png_s", t)
    scene.frame_set(job.frame_start)
    bpy.ops.wm.save_as_mainfile(filepath=str(paths["blend"].resolve()), check_existing=False)
    stage("save_blend_s", t)
    seconds["total_s"] = round(time.perf_counter() - started, 3)
    info = {
        "prompt": args.prompt if not args.source else None,
        "source": str(args.source) if args.source else None,
        "weights": None if weights is None else {
            "origin": weights.origin, "random": weights.random, "meaningful": weights.meaningful,
            "checkpoints": str(weights.checkpoints), "clip": str(weights.clip)},
        "rig": rig_kind,
        "armature": obj.name,
        "action": actions[0].name,
        "joints_mapped": len(job.plan.bone_map),
        "frames": bake.frames,
        "frame_range": [job.frame_start, frame_end],
        "fps": fps,
        "motion_seconds": round(bake.frames / fps, 3),
        "files": {k: str(v) for k, v in paths.items()},
        "seconds": seconds,
    }
    return info


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        info = run(args)
    except MomaskError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    w = info["weights"]
    if w is not None and w["random"]:
        print(random_warning(Path(info["files"]["png"]).stem), file=sys.stderr)
    print(f"wrote {info['files']['blend']}\n      {info['files']['bvh']}\n      {info['files']['png']}",
          file=sys.stderr)
    print(json.dumps(info, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
