"""Headless bake: import a rig, generate (or load) a motion, bake it, save the .blend.

    python -m momask_blender.bake --rig RIG.glb --prompt "a person walks" --seconds 4 --seed 1 \\
        --checkpoints DIR --clip ViT-B-32.pt --out OUT.blend [--export-bvh OUT.bvh]
    python -m momask_blender.bake --rig RIG.fbx --source MOTION.bvh --out OUT.blend

Prints a JSON summary (bone map, frame range, fps, seconds per stage). Any problem: a message on
stderr and a non-zero exit status.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .errors import MomaskError

RIG_SUFFIXES = (".glb", ".gltf", ".vrm", ".fbx", ".blend", ".bvh")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m momask_blender.bake", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    rig = p.add_mutually_exclusive_group(required=True)
    rig.add_argument("--rig", help="character file: " + ", ".join(RIG_SUFFIXES))
    rig.add_argument("--blend", help="an existing .blend to edit (with --inpaint)")
    p.add_argument("--armature", help="the armature object's name (default: the one with most bones)")
    p.add_argument("--prompt", default="", help="what the character does")
    p.add_argument("--source", help="bake this motion instead of generating: .bvh or HumanML3D .npy")
    p.add_argument("--out", required=True, help="the .blend to write")
    p.add_argument("--export-bvh", help="also write the motion as a HumanML3D-skeleton BVH")
    p.add_argument("--foot-lock", choices=("on", "off"), default="on")
    p.add_argument("--root-motion", choices=("full", "in-place", "keep"), default="full")
    p.add_argument("--fps", type=float, help="scene frame rate (default: the file's or Blender's)")
    p.add_argument("--frame-start", type=int, help="first frame (default: the scene's current frame)")
    p.add_argument("--bone-map", help="a bone-map preset (JSON) to use instead of detection")
    p.add_argument("--inpaint", nargs=2, type=int, metavar=("START", "END"),
                   help="regenerate only these frames of the armature's action")
    try:
        from model_core.cli import add_generation_flags
    except ImportError:  # the model code is optional for --source bakes
        add_generation_flags = _generation_flags
    add_generation_flags(p)
    for action in p._actions:  # model paths are only needed when generating
        if action.dest in ("checkpoints", "clip"):
            action.required = False
            action.default = ""
    return p


def _generation_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seconds", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--variations", type=int, default=1)
    p.add_argument("--steps", type=int, default=18)
    p.add_argument("--guidance", type=float, default=4.0)
    p.add_argument("--residual-guidance", type=float, default=5.0)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--topk", type=float, default=0.9)
    p.add_argument("--checkpoints", default="")
    p.add_argument("--clip", default="")
    p.add_argument("--device", default="cpu")


def import_rig(bpy, path: Path) -> None:
    """Load the character into a fresh, empty scene with Blender's own importers."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise MomaskError(f"rig file not found: {path}")
    if suffix not in RIG_SUFFIXES:
        raise MomaskError(f"unsupported rig file {path.name}: use one of {', '.join(RIG_SUFFIXES)}")
    try:
        if suffix == ".blend":
            bpy.ops.wm.open_mainfile(filepath=str(path), load_ui=False)
            return
        bpy.ops.wm.read_factory_settings(use_empty=True)
        if suffix in (".glb", ".gltf", ".vrm"):
            bpy.ops.import_scene.gltf(filepath=str(path))
        elif suffix == ".fbx":
            bpy.ops.import_scene.fbx(filepath=str(path))
        else:
            bpy.ops.import_anim.bvh(filepath=str(path), update_scene_fps=False)
    except RuntimeError as err:
        raise MomaskError(f"Blender could not import {path.name}: {str(err).strip()[-400:]}") from None


def pick_armature(bpy, name: str | None):
    arms = [o for o in bpy.context.scene.objects if o.type == "ARMATURE"]
    if name:
        obj = bpy.data.objects.get(name)
        if obj is None or obj.type != "ARMATURE":
            raise MomaskError(f"no armature named '{name}' (armatures: {', '.join(o.name for o in arms) or 'none'})")
        return obj
    if not arms:
        raise MomaskError("the file has no armature")
    return max(arms, key=lambda o: len(o.data.bones))


def run(args: argparse.Namespace) -> dict:
    started = time.perf_counter()
    import bpy

    from . import operators, register

    timings: dict[str, float] = {}
    if args.inpaint:
        raise MomaskError("--inpaint is not available yet")
    import_rig(bpy, Path(args.rig or args.blend).expanduser().resolve())
    timings["import_rig_s"] = time.perf_counter() - started
    obj = pick_armature(bpy, args.armature)
    for o in bpy.context.view_layer.objects:
        o.select_set(False)
    obj.select_set(True)
    bpy.context.view_layer.objects.active = obj
    scene = bpy.context.scene
    if args.fps:
        scene.render.fps, scene.render.fps_base = int(round(args.fps)), round(args.fps) / args.fps
    if args.frame_start is not None:
        scene.frame_set(args.frame_start)
    if args.bone_map:
        from .bone_map import load_preset, map_to_json
        from .job import BONE_MAP_PROPERTY

        obj[BONE_MAP_PROPERTY] = map_to_json(load_preset(args.bone_map, [b.name for b in obj.data.bones]))
    try:
        register()
    except ValueError:
        pass  # already registered in this process
    operators.last_error = ""
    result = bpy.ops.momask.generate(
        prompt=args.prompt, seconds=args.seconds or 0.0, seed=args.seed, variations=args.variations,
        steps=args.steps, guidance=args.guidance, residual_guidance=args.residual_guidance,
        temperature=args.temperature, topk=args.topk, device=args.device,
        checkpoints=str(Path(args.checkpoints).expanduser().resolve()) if args.checkpoints else "",
        clip=str(Path(args.clip).expanduser().resolve()) if args.clip else "",
        source=str(Path(args.source).expanduser().resolve()) if args.source else "",
        root_motion=args.root_motion, foot_lock=args.foot_lock == "on")
    if "FINISHED" not in result:
        raise MomaskError(operators.last_error or "the bake was cancelled")
    job, actions = operators.last_job, operators.last_actions
    if args.export_bvh:
        from .bvh_export import write_bvh

        t = time.perf_counter()
        write_bvh(args.export_bvh, job.joints[0], job.source_fps if job.source is not None else 20.0)
        timings["export_bvh_s"] = time.perf_counter() - t
    t = time.perf_counter()
    out = Path(args.out).expanduser().resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    bpy.ops.wm.save_as_mainfile(filepath=str(out), check_existing=False)
    timings["save_s"] = time.perf_counter() - t
    from .job import summary

    info = summary(job, actions)
    info["seconds"] = {**{k: round(v, 4) for k, v in timings.items()}, **info["seconds"],
                       "total_s": round(time.perf_counter() - started, 4)}
    info["out"] = str(out)
    return info


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if not args.source and not args.prompt.strip():
        print("error: give --prompt (or --source MOTION to bake a file)", file=sys.stderr)
        return 2
    try:
        info = run(args)
    except MomaskError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
