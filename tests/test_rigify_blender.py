"""A generated Rigify rig (human metarig → `pose.rigify_generate`): the bake keys the FK controls with
the limbs switched to FK, and the deform bones, evaluated, follow the source as bake_check measures."""
from __future__ import annotations

import json

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from momask_blender.scene import sources  # noqa: E402
from tests import blender_helpers as bh  # noqa: E402
from tests.conftest import shared_path  # noqa: E402


@pytest.fixture(scope="module")
def rigify_bake():
    import addon_utils

    bpy.ops.wm.read_factory_settings(use_empty=True)
    addon_utils.enable("rigify", default_set=True)
    bpy.ops.object.armature_human_metarig_add()
    bpy.ops.pose.rigify_generate()
    rig = bpy.context.object
    bpy.ops.object.mode_set(mode="OBJECT")
    bh.ensure_registered()
    bh.activate(rig)
    npy = shared_path("motions", "humanml3d_000612.npy")
    joints, src_fps = sources.load_npy(npy)
    assert bpy.ops.momask.generate(source=str(npy), foot_lock=False) == {"FINISHED"}
    frames, heads = bh.baked_heads(rig)
    return rig, joints, src_fps, frames, heads


def test_deform_bones_follow_the_motion(rigify_bake):
    rig, joints, src_fps, frames, heads = rigify_bake
    bmap = json.loads(rig["momask_bone_map"])
    assert len(bmap) == 22 and all(b.startswith("DEF-") for b in bmap.values())
    r = bpy.context.scene.render
    err, hand = bh.measure(joints, src_fps, frames, heads, r.fps / r.fps_base)
    assert err.mean() <= 5 and np.percentile(err, 95) <= 12, (err.mean(), np.percentile(err, 95))
    assert hand is not None and hand >= 0.95


def test_controls_are_keyed_in_fk(rigify_bake):
    from momask_blender.scene.keyframes import fcurve_collection

    rig = rigify_bake[0]
    paths = {fc.data_path for fc in fcurve_collection(rig, rig.animation_data.action)}
    bones = {p.split('"')[1] for p in paths}
    assert {"torso", "thigh_fk.L", "shin_fk.R", "upper_arm_fk.L", "hand_fk.R", "neck", "head"} <= bones
    assert not any(b.startswith(("DEF-", "ORG-", "MCH-")) for b in bones)
    switches = [pb for pb in rig.pose.bones if "IK_FK" in pb.keys()]
    assert switches and all(pb["IK_FK"] == 1.0 for pb in switches)
    assert all(f'pose.bones["{pb.name}"]["IK_FK"]' in paths for pb in switches)


def test_redetect_and_range_edits_know_the_rig(rigify_bake):
    """Re-detect maps the deform bones as the bake does; a range edit, which would key deform bones
    that the controls override, is refused with a message instead of doing nothing visible."""
    rig = rigify_bake[0]
    baked = json.loads(rig["momask_bone_map"])
    bh.activate(rig)
    del rig["momask_bone_map"]
    assert bpy.ops.momask.detect_bone_map() == {"FINISHED"}
    assert json.loads(rig["momask_bone_map"]) == baked
    with pytest.raises(RuntimeError, match="generated Rigify rig"):
        bpy.ops.momask.inpaint(prompt="a person jumps", frame_start=10, frame_end=30)
