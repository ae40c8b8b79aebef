"""Motion sources other than the model: HumanML3D feature/joint .npy files and BVH files.

`load_npy` is pure; `load_bvh` lets Blender's own importer parse the file, samples the imported
skeleton's joints and removes everything it added.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from model_core.motion.skeleton import T2M

from ..errors import MomaskError, model_checks
from ..rig.skeleton import FPS, JOINTS, check_joints, from_blender

FEATURES = T2M.feature_dim  # HumanML3D features per frame for the 22-joint skeleton


def load_npy(path: str | Path) -> tuple[np.ndarray, float]:
    """(joints (T, 22, 3) HumanML3D axes, fps) from a 263-d feature file or a joint array.

    The file is read by model_core's checked reader (its header against its size, no pickles) and the
    array checked as the kind of motion its shape says it is."""
    from model_core.inputs.arrays import check_features, read_npy, real_numbers

    path = Path(path)
    with model_checks():
        data = real_numbers(read_npy(path, "motion file"), path.name)
        if data.ndim == 3 and data.shape[0] == 1 and data.shape[-1] == FEATURES:
            data = data[0]
        if data.ndim == 2 and data.shape[1] == FEATURES:
            import model_core.motion

            joints = model_core.motion.recover_from_ric(check_features(data, FEATURES, path.name), 22)
        elif data.ndim == 3 and data.shape[1:] == (22, 3):
            joints = data
        else:
            raise MomaskError(f"{path.name}: expected HumanML3D features (frames, {FEATURES}) or joints "
                              f"(frames, 22, 3), got shape {data.shape}")
    return check_joints(joints, path.name), FPS


def load_bvh(path: str | Path) -> tuple[np.ndarray, float]:
    """(joints (T, 22, 3) HumanML3D axes, metres, fps) of a humanoid BVH, through Blender's importer."""
    import bpy

    from ..rig.bone_map import detect_bone_map
    from ..rig.bvh_check import check_bvh
    from .characters import importer_cause
    from .rig_reader import bone_infos

    path = Path(path)
    if not path.is_file():
        raise MomaskError(f"motion file not found: {path}")
    fps = check_bvh(path).fps
    scene = bpy.context.scene
    before = {c: set(getattr(bpy.data, c)) for c in ("objects", "armatures", "actions")}
    frame = scene.frame_current
    # the importer makes its skeleton the active, selected object: give the user's back afterwards
    view_layer = bpy.context.view_layer
    active = view_layer.objects.active
    selected = [o for o in view_layer.objects if o.select_get()]
    try:
        try:
            bpy.ops.import_anim.bvh(filepath=str(path), update_scene_fps=False, update_scene_duration=False,
                                    use_fps_scale=False, frame_start=1, global_scale=1.0)
        except RuntimeError as err:
            raise MomaskError(f"{path.name}: Blender's BVH importer failed: {importer_cause(err)}") from None
        obj = next((o for o in bpy.data.objects if o not in before["objects"] and o.type == "ARMATURE"), None)
        if obj is None or obj.animation_data is None or obj.animation_data.action is None:
            raise MomaskError(f"{path.name}: the BVH gave no animated skeleton")
        bmap = detect_bone_map(bone_infos(obj))
        lacking = [j for j in JOINTS if j not in bmap]
        if lacking:
            raise MomaskError(f"{path.name}: the BVH skeleton has no joint for {', '.join(lacking)}")
        lo, hi = (int(round(v)) for v in obj.animation_data.action.frame_range)
        bones = [obj.pose.bones[bmap[j]] for j in JOINTS]
        out = np.empty((hi - lo + 1, 22, 3))
        for k, f in enumerate(range(lo, hi + 1)):
            scene.frame_set(f)
            mw = obj.matrix_world
            out[k] = [tuple(mw @ b.head) for b in bones]
    finally:
        for coll in ("objects", "armatures", "actions"):
            data = getattr(bpy.data, coll)
            for item in [x for x in data if x not in before[coll]]:
                data.remove(item)
        scene.frame_set(frame)
        for o in view_layer.objects:
            o.select_set(o in selected)
        view_layer.objects.active = active
    return check_joints(from_blender(out), path.name), fps


def load_source(path: str | Path) -> tuple[np.ndarray, float]:
    suffix = Path(path).suffix.lower()
    if suffix == ".npy":
        return load_npy(path)
    if suffix == ".bvh":
        return load_bvh(path)
    raise MomaskError(f"unsupported motion file {Path(path).name}: use a .bvh or a HumanML3D .npy")
