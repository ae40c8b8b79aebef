"""One bake, split for threads: prepare (main thread, reads bpy) → compute (pure) → apply (main thread).

`compute` never touches bpy, so the sidebar's modal operator can run it in a worker thread;
the synchronous operator and the command line call the three in a row.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import MomaskError
from ..rig.plan import RigPlan, plan_rig
from ..rig.retarget import Bake, RetargetOptions, retarget
from ..rig.skeleton import FPS, JOINTS
from ..scene.bone_maps import (
    BONE_MAP_PROPERTY,
    detection_for,
    resolve_bone_map,
    store_bone_map,
    store_detection,
    stored_bone_map,
)

MAX_PROMPT_NAME = 60


@dataclass
class Generation:
    """What to ask the model for."""

    prompt: str
    seconds: float | None
    seed: int
    variations: int
    steps: int
    guidance: float
    residual_guidance: float
    temperature: float
    topk: float
    checkpoints: str
    clip: str
    device: str = "cpu"
    server: str = ""                            # a model server's URL: the model runs there, not here
    token: str = field(default="", repr=False)  # the server's token (from the preferences, never saved in scenes)
    local_server: bool = False                  # the server is the add-on's own (setup.local_server), maybe starting
    residual_temperature: float = 1.0           # the official default; only the command line sets it
    threads: int = 0                            # CPU threads of a model run here (the Threads preference); 0: PyTorch's

    def check_model(self) -> None:
        """The model can be reached: its local files and PyTorch are there, or a server address is given."""
        if self.server and not self.local_server:
            from model_core.serve.client import ServerError, check_url

            try:
                check_url(self.server)
            except ServerError as err:
                raise MomaskError(str(err)) from None
        else:
            from ..setup.pytorch import missing_message, missing_modules
            from ..setup.weights import check_paths

            check_paths(self.checkpoints, self.clip)
            missing = [] if self.local_server else missing_modules()  # a local server has its own Python
            if missing:
                raise MomaskError(missing_message(missing))

    def settings(self):
        """The model's GenerationSettings for these values."""
        from model_core.settings import GenerationSettings

        return GenerationSettings.from_mapping(vars(self))

    def check(self) -> None:
        """Every value within what the model takes (model_core's own checks), before any work starts."""
        from model_core.generation.requests import check_frames, check_variations, seconds_to_frames
        from model_core.inputs.numbers import seed

        from ..errors import model_checks

        with model_checks():
            self.settings().validate()
            seed(self.seed, check_variations(self.variations))
            if self.seconds is not None:
                check_frames(seconds_to_frames(self.seconds))


@dataclass
class BakeJob:
    object_name: str
    plan: RigPlan
    options: RetargetOptions
    frame_start: int
    action_name: str
    generation: Generation | None = None
    source: np.ndarray | None = None        # (T, 22, 3) HumanML3D joints when baking a file
    source_fps: float = FPS
    timings: dict[str, float] = field(default_factory=dict)
    bakes: list[Bake] = field(default_factory=list)
    joints: list[np.ndarray] = field(default_factory=list)  # the source motions, HumanML3D axes
    seams: list[int] = field(default_factory=list)  # model frames where a long motion's windows meet
    segments: list | None = None            # a prompt sequence (model_core Segments): one motion through each
    controls: object | None = None          # rigify_rig.ControlPlan: bake a generated Rigify rig's controls
    detection: object | None = None         # bone_map.Detection when the map was detected, not stored
    constraints: list = field(default_factory=list)  # model_core Constraints (model space) every motion meets
    placement: object | None = None         # rig.directing.Placement: a directed motion's place on the rig
    reaches: list = field(default_factory=list)  # (scene frame, joint, world target): met on the rig's own limbs
    key_frames: list = field(default_factory=list)  # scene frames of keyed poses (the rig's reach fix leaves them)

    @property
    def motion_fps(self) -> float:
        """The frame rate of `joints`: the motion file's, or the model's 20 fps."""
        return self.source_fps if self.source is not None else FPS


# ----------------------------------------------------------------------------- prepare (bpy)


def prepare(context, obj, *, prompt: str, generation: Generation | None, source_path: str = "",
            root_motion: str = "full", foot_lock: bool = True, segments: list | None = None,
            direction=None) -> BakeJob:
    """Check the inputs and read everything the bake needs from Blender. Changes nothing.

    The motion comes from `source_path` (a motion file), or the model: `generation`, and with
    `segments` one continuous motion through a prompt sequence. `direction`
    (`jobs.directing.Direction`): keyed poses, a path and targets the generated motion meets."""
    from ..rig.bone_map import missing_required
    from ..rig.resample import scene_fps
    from ..scene.rig_reader import check_armature, read_rig

    started = time.perf_counter()
    check_armature(obj)
    bone_map = resolve_bone_map(obj)
    detection = None if stored_bone_map(obj) else detection_for(obj)
    lacking = missing_required(bone_map)
    if lacking:
        unmapped = [j for j in JOINTS if j not in bone_map]
        raise MomaskError(f"cannot map the joints {', '.join(lacking)} onto armature '{obj.name}' "
                          f"(unmapped: {', '.join(unmapped)}); set them in the '{BONE_MAP_PROPERTY}' bone map "
                          "or load a bone-map preset")
    render = context.scene.render
    options = RetargetOptions(fps=scene_fps(render.fps, render.fps_base), root_motion=root_motion,
                              foot_lock=foot_lock)
    from ..scene import rigify_rig

    controls = None
    if rigify_rig.uses_deform_map(obj, bone_map):
        plan = plan_rig(read_rig(obj, rigify_rig.deform_parents(obj)), bone_map)
        controls = rigify_rig.plan_controls(obj, bone_map)
    else:
        plan = plan_rig(read_rig(obj), bone_map)
    job = BakeJob(object_name=obj.name, plan=plan, options=options, frame_start=context.scene.frame_current,
                  action_name="", generation=generation, controls=controls, segments=segments,
                  detection=detection)
    if source_path:
        from ..scene.sources import load_source

        job.source, job.source_fps = load_source(source_path)
        job.action_name = prompt.strip() or Path(source_path).stem
    else:
        if generation is None or not prompt.strip():
            raise MomaskError("the prompt is empty: describe the motion in a sentence")
        generation.check()
        generation.check_model()
        job.action_name = prompt.strip()
    if direction is not None and direction.wanted():
        if source_path:
            raise MomaskError("a motion file is baked as it is: keyed poses, paths and targets direct generated "
                              "motion only")
        from . import directing

        job.constraints, job.placement, job.reaches, job.key_frames = directing.for_generate(
            context, obj, plan, direction, job.frame_start, options.fps, _model_frames(generation, segments))
    job.action_name = job.action_name[:MAX_PROMPT_NAME]
    job.timings["prepare_s"] = time.perf_counter() - started
    return job


def _model_frames(generation: Generation, segments: list | None) -> int | None:
    """Frames (20 fps, whole tokens) the model will make, or None when its estimator picks."""
    from model_core.generation.requests import seconds_to_frames
    from model_core.settings import FRAMES_PER_TOKEN

    if segments:
        frames = sum(s.frames for s in segments)
    elif generation.seconds is None:
        return None
    else:
        frames = seconds_to_frames(generation.seconds)
    return frames // FRAMES_PER_TOKEN * FRAMES_PER_TOKEN


def sequence_segments(text: str) -> list:
    """The segments of a prompt sequence (lines of `seconds<TAB>prompt`; `parse_sequence` holds the
    rows and their total to what one generation makes)."""
    from model_core.generation.requests import parse_sequence

    from ..errors import model_checks

    with model_checks():
        return parse_sequence(text)


# ----------------------------------------------------------------------------- compute (pure)


def compute(job: BakeJob, progress=None) -> BakeJob:
    """Run the model (if asked) and retarget every motion. No bpy: safe in a worker thread."""
    if job.source is not None:
        motions = [job.source]
    else:
        motions, timings, job.seams = generate(job.generation, progress, job.segments, job.constraints)
        job.timings.update(timings)
    started = time.perf_counter()
    job.joints = motions
    options = job.options
    if job.constraints:  # a directed motion: already where the rig stands, in rig space once placed
        import dataclasses

        motions = [job.placement.to_rig(m) for m in motions]
        options = dataclasses.replace(options, placed=True)
    job.bakes = [retarget(m, job.plan, options, src_fps=job.motion_fps) for m in motions]
    if job.reaches:  # the rig's limbs are not the model's scaled: put its hands and feet on the targets
        from ..rig.reach import reach_on_rig

        reaches = [(frame - job.frame_start, joint, world) for frame, joint, world in job.reaches]
        keys = [frame - job.frame_start for frame in job.key_frames]
        job.bakes = [reach_on_rig(b, job.plan, reaches, width=options.fps, fixed=keys) for b in job.bakes]
    job.timings["retarget_s"] = time.perf_counter() - started
    return job


def generate(gen: Generation, progress=None, segments=None,
             constraints=None) -> tuple[list[np.ndarray], dict[str, float], list[int]]:
    """Joint motions (T, 22, 3) from the model, one per variation, each cut to its own length, and
    the frames where a long motion's windows meet. With `segments`, one continuous motion follows
    each segment's prompt in turn; each motion meets `constraints`."""
    from .model_cache import model_for

    started = time.perf_counter()
    model = model_for(gen, progress)
    loaded = time.perf_counter()
    import model_core

    try:
        settings = gen.settings()
        if segments:
            motion = model.generate_sequence(segments, seed=gen.seed, variations=gen.variations, settings=settings,
                                             progress=progress, constraints=constraints)
        else:
            motion = model.generate([gen.prompt], gen.seconds, seed=gen.seed, variations=gen.variations,
                                    settings=settings, progress=progress, constraints=constraints)
    except model_core.ModelError as err:
        raise MomaskError(str(err)) from None
    joints = np.asarray(motion.joints, dtype=np.float64)
    out = [joints[i, :n] for i, n in enumerate(motion.lengths)]
    for j in out:
        if not np.isfinite(j).all():
            raise MomaskError("the model produced NaN/inf joint positions (broken checkpoints?)")
    return out, {"load_model_s": loaded - started, "generate_s": time.perf_counter() - loaded}, list(motion.seams)


# ----------------------------------------------------------------------------- apply (bpy)


def apply(context, job: BakeJob) -> list:
    """Write one new Action per motion onto the armature; the first one is assigned."""
    import bpy

    from ..scene.keyframes import write_bake

    started = time.perf_counter()
    obj = bpy.data.objects.get(job.object_name)
    if obj is None or obj.type != "ARMATURE":
        raise MomaskError(f"armature '{job.object_name}' is gone")
    from ..rig.resample import MAX_SCENE_FRAME

    last = job.frame_start + max(b.frames for b in job.bakes) - 1
    if last > MAX_SCENE_FRAME:
        raise MomaskError(f"the motion would end on frame {last:,}, past Blender's last frame ({MAX_SCENE_FRAME:,}): "
                          "start it earlier")
    needed = {name for bake in job.bakes for name in [*bake.bone_names, *bake.locations]}
    needed |= {b.root_bone for b in job.bakes if b.root_bone}
    gone = sorted(needed - set(obj.pose.bones.keys()))
    if gone:
        raise MomaskError(f"bones renamed or deleted while the motion was made: {', '.join(gone)}")
    previous = obj.animation_data.action if obj.animation_data else None
    previous_slot = obj.animation_data.action_slot if (previous and hasattr(obj.animation_data, "action_slot")) \
        else None
    keep = previous if job.options.root_motion == "keep" else None
    actions = []
    pose = _pose_snapshot(obj)
    try:
        for k, bake in enumerate(job.bakes):
            name = job.action_name if len(job.bakes) == 1 else f"{job.action_name} v{k + 1}"
            if keep is not None and obj.animation_data is not None:
                obj.animation_data.action = keep  # read the old root curves through its slot
                if previous_slot is not None:
                    obj.animation_data.action_slot = previous_slot
            if job.controls is not None:
                act = _write_rigify(obj, job, bake, name, keep)
            else:
                act = write_bake(obj, bake, name, job.frame_start, keep_root_from=keep)
            act.use_fake_user = len(job.bakes) > 1
            actions.append(act)
    except Exception as err:  # leave the scene as it was: no half-written result, no lost action
        _undo_apply(obj, actions, previous, previous_slot, pose)
        raise MomaskError(f"writing the keyframes failed, nothing was changed ({type(err).__name__}: {err})") from err
    obj.animation_data.action = actions[0]
    if hasattr(obj.animation_data, "action_slot") and len(actions[0].slots):
        obj.animation_data.action_slot = actions[0].slots[0]
    if previous is not None and previous.users == 0:
        previous.use_fake_user = True  # kept for the user, not deleted when the file is saved
    if job.detection is not None and job.detection.bone_map == job.plan.bone_map:
        store_detection(obj, job.detection)
    else:
        store_bone_map(obj, job.plan.bone_map, keep_record=True)  # the map it had: detection's record still holds
    scene = context.scene
    end = job.frame_start + max(b.frames for b in job.bakes) - 1
    if scene.frame_end < end:
        scene.frame_end = end
    job.timings["keyframes_s"] = time.perf_counter() - started
    return actions


def _pose_snapshot(obj) -> dict:
    """Each pose bone's transform and its Rigify IK/FK switch: what writing a bake may change."""
    from ..scene.rigify_rig import IK_FK

    return {pb.name: (tuple(pb.location), tuple(pb.rotation_quaternion), tuple(pb.rotation_euler),
                      tuple(pb.rotation_axis_angle), tuple(pb.scale), pb.get(IK_FK)) for pb in obj.pose.bones}


def _undo_apply(obj, actions: list, previous, previous_slot, pose: dict) -> None:
    """Remove what a failed apply created and give the armature back its action, slot and pose."""
    import bpy

    anim = obj.animation_data
    if anim is not None:
        anim.action = previous
        if previous_slot is not None:
            anim.action_slot = previous_slot
    for action in actions:
        bpy.data.actions.remove(action)
    from ..scene.rigify_rig import IK_FK

    for name, (loc, quat, euler, axis_angle, scale, switch) in pose.items():
        pb = obj.pose.bones.get(name)
        if pb is not None:
            pb.location, pb.rotation_quaternion, pb.rotation_euler = loc, quat, euler
            pb.rotation_axis_angle, pb.scale = axis_angle, scale
            if switch is not None:
                pb[IK_FK] = switch


def _write_rigify(obj, job: BakeJob, bake: Bake, name: str, keep):
    """A generated Rigify rig: solve its FK controls on the evaluated rig, key them and the FK switches."""
    import dataclasses

    from ..scene import rigify_rig
    from ..scene.keyframes import write_bake

    anim = obj.animation_data
    current = anim.action if anim else None
    slot = anim.action_slot if (current is not None and hasattr(anim, "action_slot")) else None
    if anim is not None:
        anim.action = None  # solve against the bare rig: no curves may override the controls
    rigify_rig.switch_to_fk(obj, job.controls)
    names, quats, root_loc = rigify_rig.solve_controls(obj, job.controls, job.plan, bake)
    if anim is not None and current is not None:
        anim.action = current
        if slot is not None:
            anim.action_slot = slot
    controls = dataclasses.replace(bake, bone_names=names, quats=quats, root_bone=job.controls.root_control,
                                   root_location=root_loc)
    act = write_bake(obj, controls, name, job.frame_start, keep_root_from=keep)
    rigify_rig.key_switches(obj, act, job.controls, job.frame_start)
    return act


def record_variations(context, job: BakeJob, actions: list) -> None:
    """List the new Actions in the sidebar's variations (when the add-on's scene settings exist)."""
    import bpy

    from ..scene import variations

    settings = getattr(context.scene, "momask", None)
    obj = bpy.data.objects.get(job.object_name)
    if settings is not None and obj is not None:
        variations.record(settings, obj, actions, job.generation.seed if job.generation is not None else 0)


def run(context, obj, **prepare_args) -> tuple[BakeJob, list]:
    """prepare → compute → apply in a row on this thread, for the command lines and scripts
    (the Generate operator runs the same three steps, compute in a worker thread)."""
    job = compute(prepare(context, obj, **prepare_args))
    actions = apply(context, job)
    record_variations(context, job, actions)
    return job, actions


def summary(job: BakeJob, actions) -> dict:
    return {
        "armature": job.object_name,
        "actions": [a.name for a in actions],
        "bone_map": job.plan.bone_map,
        "joints_mapped": len(job.plan.bone_map),
        "frame_start": job.frame_start,
        "frame_end": job.frame_start + max(b.frames for b in job.bakes) - 1,
        "fps": job.options.fps,
        "root_motion": job.options.root_motion,
        "foot_lock": job.options.foot_lock,
        "scale": round(job.bakes[0].scale, 5),
        "seams": job.seams,
        "constraints": len(job.constraints),
        "seconds": {k: round(v, 4) for k, v in job.timings.items()},
    }

