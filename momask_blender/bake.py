"""Headless bake: import a rig, generate (or load) a motion, bake it, save the .blend.

    python -m momask_blender.bake --rig RIG.glb --prompt "a person walks" --seconds 4 --seed 1 \\
        --checkpoints DIR --clip ViT-B-32.pt --out OUT.blend [--export-bvh OUT.bvh]
    python -m momask_blender.bake --rig RIG.fbx --source MOTION.bvh --out OUT.blend
    python -m momask_blender.bake --blend IN.blend --armature NAME --inpaint 40 80 --prompt "a person jumps" \\
        --checkpoints DIR --clip ViT-B-32.pt --out OUT.blend        (or --extend-after / --extend-before SECONDS)
    python -m momask_blender.bake --rig RIG.glb --prompt "a person walks" --seconds 30 ... --out OUT.blend
    python -m momask_blender.bake --rig RIG.glb --sequence SEQ.txt ... --out OUT.blend   (lines: seconds<TAB>prompt)
    python -m momask_blender.bake ... --out OUT.blend --preview OUT.png   (or OUT.mp4: the whole motion)
    python -m momask_blender.bake --blend IN.blend --prompt "a person walks" --seconds 6 --path CURVE \\
        [--use-keys [all|selected]] [--targets COLLECTION] [--constraints FILE.json] ... --out OUT.blend
        (directed: the motion meets keyed poses, a path, target empties or constraints; also with --inpaint)

`--preview` renders the baked character with Blender's Workbench engine: a .png shows it from the
side and the front at a few moments, an .mp4 the whole motion (Blender's FFmpeg output). The
render happens in a scene of its own that is removed before the .blend is saved.

It runs the same jobs the sidebar's operators run (prepare → compute → apply), in a row.
Prints a JSON summary (bone map, frame range, fps, seconds per stage). Any problem: a message on
stderr and a non-zero exit status.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

from model_core.flags import add_generation_flags, settings_from_args
from model_core.serve.client import TOKEN_ENV

from .errors import MomaskError, model_checks
from .rig.retarget import ROOT_MOTIONS
from .rig.skeleton import FPS
from .scene.characters import RIG_SUFFIXES


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
    p.add_argument("--root-motion", choices=ROOT_MOTIONS, default="full")
    p.add_argument("--fps", type=float, help="scene frame rate (default: the file's or Blender's)")
    p.add_argument("--frame-start", type=int, help="first frame (default: the scene's current frame)")
    p.add_argument("--bone-map", help="a bone-map preset (JSON) to use instead of detection")
    p.add_argument("--inpaint", nargs=2, type=int, metavar=("START", "END"),
                   help="regenerate only these frames of the armature's action")
    p.add_argument("--extend-before", type=float, metavar="SECONDS", help="new motion before the animation")
    p.add_argument("--extend-after", type=float, metavar="SECONDS", help="new motion after the animation")
    p.add_argument("--keep-original", action="store_true", help="with --inpaint/--extend: keep a copy of the action")
    p.add_argument("--sequence", help="a prompt sequence: lines of seconds<TAB>prompt, one continuous motion")
    p.add_argument("--preview", metavar="FILE", help="also render the result: FILE.png (side and front at a few "
                   "moments) or FILE.mp4 (the whole motion)")
    p.add_argument("--preview-moments", type=int, default=6, metavar="N", help="moments in a .png preview")
    direct = p.add_argument_group("directing (generating, or with --inpaint)")
    direct.add_argument("--use-keys", nargs="?", const="all", choices=("all", "selected"),
                        help="the armature's keyed poses inside the generated frames (all, or the selected keys)")
    direct.add_argument("--path", metavar="CURVE", help="a curve object the hips follow")
    direct.add_argument("--path-frames", nargs=2, type=int, metavar=("START", "END"),
                        help="scene frames at the path's start and end (default: the generated frames)")
    direct.add_argument("--face-path", choices=("on", "off"), default="on",
                        help="face along the path (off: the model's own walk turned onto it)")
    direct.add_argument("--targets", metavar="COLLECTION",
                        help="a collection of target empties (momask_frame, momask_joint): waypoints, reaches")
    direct.add_argument("--constraints", metavar="FILE.json",
                        help="model_core's constraints format, positions in world metres with HumanML3D axes "
                        "(x, height, -y), frames at 20 fps from the first generated frame")
    add_generation_flags(p, model_required=False)  # model paths are only needed when generating
    p.add_argument("--server", help="a model server (http://host:8790): the model runs there, and this process "
                   "needs no PyTorch (then --checkpoints/--clip are not needed)")
    p.add_argument("--token", help=f"the server's token (or set {TOKEN_ENV})")
    return p


def _resolved(path: str | None) -> str:
    return str(Path(path).expanduser().resolve()) if path else ""


def generation(args):
    """The model request the command line's flags describe (`seconds` None: the model's guess)."""
    from .jobs.bake import Generation

    return Generation(prompt=args.prompt.strip(), seconds=args.seconds or None, seed=args.seed,
                      variations=args.variations, checkpoints=_resolved(args.checkpoints),
                      clip=_resolved(args.clip), device=args.device, server=args.server or "",
                      token=args.token or os.environ.get(TOKEN_ENV, ""), **asdict(settings_from_args(args)))


def direction(args):
    """The directing flags as a `jobs.directing.Direction`."""
    from .jobs.directing import Direction

    start, end = args.path_frames if args.path_frames else (None, None)
    return Direction(use_keys=(args.use_keys or "none").upper(), path=args.path or "", path_start=start,
                     path_end=end, face_path=args.face_path == "on", targets=args.targets or "",
                     constraints_file=_resolved(args.constraints))


def prepare_scene(args):
    """Open the character (or the .blend), select its armature, set the frame rate and start, apply a
    bone-map preset. Returns the armature."""
    import bpy

    from . import register
    from .rig.bone_map import load_preset
    from .rig.resample import check_frame, fps_settings
    from .scene.bone_maps import store_bone_map
    from .scene.characters import import_rig, pick_armature, select_only, set_frame_rate

    if args.fps is not None:
        fps_settings(args.fps)  # checked before the rig is read (--fps 0 is an error, not "the default")
    frame = check_frame(args.frame_start) if args.frame_start is not None else None
    import_rig(Path(args.rig or args.blend).expanduser().resolve())
    obj = pick_armature(args.armature)
    select_only(obj)
    scene = bpy.context.scene
    if args.fps is not None:
        set_frame_rate(scene, args.fps)
    if frame is not None:
        scene.frame_set(frame)
    if args.bone_map:
        store_bone_map(obj, load_preset(args.bone_map, [b.name for b in obj.data.bones]))  # the user's map
    register()  # the scene's settings (variations) are saved with the file, as from the sidebar
    return obj


def run(args: argparse.Namespace) -> dict:
    started = time.perf_counter()
    import bpy

    editing = args.inpaint is not None or args.extend_before is not None or args.extend_after is not None
    if editing and not args.blend:
        raise MomaskError("--inpaint and --extend-* edit an existing animation: give it with --blend IN.blend")
    check_preview_path(args.preview)
    from .scene.saving import check_output

    check_output(args.out, "--out file")  # before the work, not after it
    for path, what in ((args.export_bvh, "--export-bvh file"), (args.preview, "--preview file")):
        if path:
            check_output(path, what)
    obj = prepare_scene(args)
    imported = time.perf_counter() - started
    if editing:
        info = _edit(bpy.context, obj, args)
    else:
        info = _bake(bpy.context, obj, args)
    info["seconds"] = {"import_rig_s": round(imported, 4), **info["seconds"]}
    if args.preview:
        info["preview"] = _preview(bpy.context, obj, args, info)
    return _save(bpy, args, info, started)


def check_preview_path(path: str | None) -> None:
    """Refuse a preview this Blender cannot write before any work is done."""
    if not path:
        return
    suffix = Path(path).suffix.lower()
    if suffix not in (".png", ".mp4"):
        raise MomaskError(f"--preview {path}: name a .png (a picture) or an .mp4 (a movie)")
    if suffix == ".mp4":
        from .scene.render import check_movie_support

        check_movie_support()


def _preview(context, obj, args, info: dict) -> dict:
    """Render the baked character (the scene's own frame range of the new action) to --preview."""
    from .scene import render
    from .scene.bone_maps import resolve_bone_map
    from .scene.staging import action_range

    path = Path(args.preview).expanduser().resolve()
    what = Path(args.source).name if args.source else (args.prompt.strip() or Path(args.sequence or "").name)
    frames = (info["frame_start"], info["frame_end"]) if "frame_end" in info else None
    common = dict(bone_map=resolve_bone_map(obj), frame_range=frames)
    if path.suffix.lower() == ".mp4":
        result = render.render_movie(context.scene, obj, path, title=what, **common)
    else:
        r = context.scene.render
        lo, hi = frames or action_range(obj, context.scene)
        sub = f"{obj.name} from {Path(args.rig or args.blend).name}, frames {lo}-{hi} at {r.fps / r.fps_base:g} fps"
        result = render.render_still(context.scene, obj, path, moments=args.preview_moments, title=what,
                                     subtitle=sub, **common)
        result.pop("tiles")
    return result


def _bake(context, obj, args) -> dict:
    """Generate (any length, or a prompt sequence) or bake a motion file onto the armature."""
    from .jobs import bake

    segments = None
    if args.sequence:
        from model_core.inputs.text import read_text

        with model_checks():
            text = read_text(args.sequence, "sequence file")
        if not text.strip():
            raise MomaskError(f"the sequence file {args.sequence} is empty: write lines of seconds<TAB>prompt")
        segments = bake.sequence_segments(text)
    gen = None if args.source else generation(args)
    if segments:
        gen.prompt = " / ".join(dict.fromkeys(s.prompt for s in segments))
        gen.seconds = sum(s.frames for s in segments) / FPS
    job, actions = bake.run(context, obj, prompt=gen.prompt if gen else args.prompt, generation=gen,
                            source_path=_resolved(args.source), root_motion=args.root_motion,
                            foot_lock=args.foot_lock == "on", segments=segments, direction=direction(args))
    info = bake.summary(job, actions)
    if args.export_bvh:
        from model_core.motion.bvh import write_bvh

        t = time.perf_counter()
        with model_checks():
            write_bvh(args.export_bvh, job.joints[0], job.motion_fps, "--export-bvh file")
        info["seconds"]["export_bvh_s"] = round(time.perf_counter() - t, 4)
    return info


def _edit(context, obj, args) -> dict:
    """--inpaint / --extend-*: edit the armature's current action in place."""
    from .jobs import timeline
    from .rig import windows

    if sum(x is not None for x in (args.inpaint, args.extend_before, args.extend_after)) != 1:
        raise MomaskError("give one of --inpaint, --extend-before and --extend-after")
    gen = generation(args)
    gen.seconds, gen.variations = None, 1  # the range or the extension sets the length
    if args.inpaint is not None:
        s, e = args.inpaint
        window_for = lambda lo, hi, fps: windows.plan_range(lo, hi, s, e, fps)  # noqa: E731
    else:
        side = "BEFORE" if args.extend_before is not None else "AFTER"
        seconds = args.extend_before if side == "BEFORE" else args.extend_after
        window_for = lambda lo, hi, fps: windows.plan_extension(lo, hi, seconds, side, fps)  # noqa: E731
    return timeline.run(context, obj, window_for, prompt=args.prompt, generation=gen,
                        keep_original=args.keep_original, direction=direction(args))


def _save(bpy, args, info: dict, started: float) -> dict:
    from .scene.saving import save_blend

    t = time.perf_counter()
    out = save_blend(args.out, "--out file")
    info["seconds"] = {**info.get("seconds", {}), "save_s": round(time.perf_counter() - t, 4),
                       "total_s": round(time.perf_counter() - started, 4)}
    info["out"] = str(out)
    return info


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if not (args.source or args.sequence) and not args.prompt.strip():
        print("error: give --prompt (or --source MOTION to bake a file)", file=sys.stderr)
        return 2
    from model_core.errors import ModelError

    try:
        info = run(args)
    except (MomaskError, ModelError) as err:  # ModelError: a model_core check the job did not wrap
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    from .scene.teardown import exit_process

    exit_process(main())
