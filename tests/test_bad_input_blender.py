"""Bad input through the Generate operator and the importers, inside Blender: one line naming the
problem, the scene as it was; library overrides are baked like local armatures."""
from __future__ import annotations

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from momask_blender.errors import MomaskError  # noqa: E402
from momask_blender.rig import bvh_check  # noqa: E402
from momask_blender.scene import bone_maps, sources  # noqa: E402
from momask_blender.scene.characters import import_rig, importer_cause  # noqa: E402
from tests import blender_helpers as bh  # noqa: E402
from tests.bvh_samples import GOOD_BVH, bvh_with  # noqa: E402
from tests.conftest import shared_path  # noqa: E402


@pytest.fixture
def mixamo():
    return bh.load_rig(shared_path("rigs", "mpfb_mixamo_tpose_cm.fbx"))


def scene_state():
    objs = sorted((o.name, o.type, tuple(o.keys()), tuple(o.scale)) for o in bpy.data.objects)
    acts = sorted(a.name for a in bpy.data.actions)
    assigned = {o.name: (o.animation_data.action.name if o.animation_data and o.animation_data.action else None)
                for o in bpy.data.objects}
    return objs, acts, assigned, bpy.context.scene.frame_end


def _refused(obj, source, match: str) -> str:
    bh.activate(obj)
    before = scene_state()
    with pytest.raises(RuntimeError) as caught:
        bpy.ops.momask.generate(source=str(source))
    message = str(caught.value)
    assert match in message and "Traceback" not in message and len(message.strip().splitlines()) == 1, message
    assert scene_state() == before
    return message


# ----------------------------------------------------------------------------- motion files


def test_a_zero_byte_npy_source_is_one_line(mixamo, tmp_path):
    (tmp_path / "empty.npy").write_bytes(b"")
    _refused(mixamo, tmp_path / "empty.npy", "is empty (0 bytes)")


def test_an_all_zero_joint_array_is_refused(mixamo, tmp_path):
    np.save(tmp_path / "zeros.npy", np.zeros((40, 22, 3), np.float32))
    _refused(mixamo, tmp_path / "zeros.npy", "all sit on one point")


@pytest.mark.parametrize("frame_time", ["1000", "1e-300", "inf"])
def test_bvh_frame_times_that_would_ask_for_millions_of_frames_or_one(mixamo, tmp_path, frame_time):
    path = tmp_path / "time.bvh"
    path.write_text(bvh_with(frame_time=frame_time))
    _refused(mixamo, path, "Frame Time")


def test_nan_bvh_channels_are_refused(mixamo, tmp_path):
    path = tmp_path / "nan.bvh"
    path.write_text(bvh_with(bad_value="nan"))
    _refused(mixamo, path, "NaN or infinite")


def test_blender_importer_failures_are_one_line(tmp_path, monkeypatch):
    """A file our check lets through but Blender's BVH importer chokes on: its exception line, once."""
    path = tmp_path / "broken.bvh"
    path.write_text(GOOD_BVH.read_text().replace("\t\t\tOFFSET 0.0 0.4 0.0\n", ""))  # End Site without OFFSET
    with pytest.raises(RuntimeError) as raw:
        bpy.ops.import_anim.bvh(filepath=str(path))
    assert importer_cause(raw.value) == "IndexError: list index out of range"
    monkeypatch.setattr(bvh_check, "check_bvh", lambda p: bvh_check.BvhInfo(["Hips"], 9, 3, 20.0))
    with pytest.raises(MomaskError) as caught:
        sources.load_bvh(path)
    assert str(caught.value) == "broken.bvh: Blender's BVH importer failed: IndexError: list index out of range"


def test_a_zero_byte_fbx_says_it_is_empty(tmp_path):
    (tmp_path / "rig.fbx").write_bytes(b"")
    with pytest.raises(MomaskError, match="rig.fbx is empty") as caught:
        import_rig(tmp_path / "rig.fbx")
    assert "ASCII" not in str(caught.value)


# ----------------------------------------------------------------------------- armatures


@pytest.mark.parametrize(("scale", "match"), [((0.0, 1.0, 1.0), "scale of 0"), ((-1.0, 1.0, 1.0), "mirrored")])
def test_zero_and_mirrored_scales_are_named(mixamo, scale, match):
    mixamo.scale = scale
    bpy.context.view_layer.update()
    _refused(mixamo, shared_path("motions", "momask_sample_a.bvh"), match)


def test_a_library_override_is_baked_and_keeps_its_bone_map(tmp_path):
    """An editable override's animation data is local: the bake writes there; the bone map (a
    property its library lacks, which an override cannot save) is kept in the scene."""
    rig = bh.load_rig(shared_path("rigs", "mpfb_mixamo_tpose_cm.fbx"))
    collection = bpy.data.collections.new("Character")
    bpy.context.scene.collection.children.link(collection)
    for c in list(rig.users_collection):
        c.objects.unlink(rig)
    collection.objects.link(rig)
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "library.blend"))
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bh.ensure_registered()
    with bpy.data.libraries.load(str(tmp_path / "library.blend"), link=True) as (_, linked):
        linked.collections = ["Character"]
    holder = bpy.data.objects.new("CharacterInstance", None)
    holder.instance_type, holder.instance_collection = "COLLECTION", linked.collections[0]
    bpy.context.scene.collection.objects.link(holder)
    bh.activate(holder)
    bpy.ops.object.make_override_library()
    override = next(o for o in bpy.data.objects if o.type == "ARMATURE" and o.override_library is not None)
    assert override.data.library is not None  # its bones stay linked: they are only read
    bh.activate(override)
    assert bpy.ops.momask.generate(source=str(shared_path("motions", "momask_sample_a.bvh"))) == {"FINISHED"}
    action = override.animation_data.action
    assert action is not None and action.library is None and len(bh.baked_heads(override)[0]) > 50
    name = action.name
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "shot.blend"))
    bpy.ops.wm.open_mainfile(filepath=str(tmp_path / "shot.blend"))
    override = next(o for o in bpy.data.objects if o.type == "ARMATURE" and o.override_library is not None)
    assert override.animation_data.action.name == name
    assert bone_maps.stored_bone_map(override) is not None


def test_a_linked_armature_says_how_to_override_it(tmp_path):
    rig = bh.load_rig(shared_path("rigs", "mpfb_mixamo_tpose_cm.fbx"))
    bpy.data.libraries.write(str(tmp_path / "lib.blend"), {rig}, fake_user=True)
    with bpy.data.libraries.load(str(tmp_path / "lib.blend"), link=True) as (src, dst):
        dst.objects = list(src.objects)
    linked = dst.objects[0]
    bpy.context.scene.collection.objects.link(linked)
    message = _refused(linked, shared_path("motions", "momask_sample_a.bvh"), "Library Override > Make")
    assert "lib.blend" in message
