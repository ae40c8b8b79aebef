"""The sidebar inside Blender (bpy as a module): registration, preferences, operators, variations,
the bone-map editor, bad input, and the modal job path as far as a headless Blender can run it.

What a headless Blender cannot do, and how these tests get as close as they can:
- Panels are never drawn (no GPU, `wm.redraw_timer` refuses): their `poll`s are tested, the data
  their rows show (editor map, variation list, job display) is tested through the same functions.
- No events: `bpy.ops.x("INVOKE_DEFAULT")` calls `execute`, never `invoke`, in background mode.
  The tests register a subclass of each job operator whose `execute` calls the inherited
  `invoke` (the code the sidebar's button runs), and after `invoke` returns RUNNING_MODAL they
  call the running operator's `modal()` with TIMER and ESC events, as the event loop would.
- No undo stack (`ed.undo` fails its poll in background mode): the undo test skips with that
  reason; the tests check instead that each action is one operator with the UNDO flag, and that
  a cancelled or failed run changes nothing at all.
"""
from __future__ import annotations

import json
import sys
import time
from types import SimpleNamespace

import pytest

bpy = pytest.importorskip("bpy")

import momask_blender  # noqa: E402
from momask_blender.jobs import modal, model_cache  # noqa: E402
from momask_blender.rig.skeleton import JOINTS  # noqa: E402
from momask_blender.scene.bone_maps import BONE_MAP_PROPERTY  # noqa: E402
from momask_blender.ui import operators, preferences  # noqa: E402
from tests import blender_helpers as bh  # noqa: E402
from tests.conftest import shared_path  # noqa: E402

FAST = {"steps": 2, "seconds": 1.0}


@pytest.fixture(scope="module")
def addon(model_paths, tmp_path_factory):
    """The add-on enabled the way Blender enables it, preferences on the reference models; a saved
    scene with the Mixamo rig (factory settings reset the preferences, opening a file doesn't)."""
    import addon_utils

    obj = bh.load_rig(shared_path("rigs", "mpfb_mixamo_tpose_cm.fbx"))
    obj.name = "Hero"
    blend = tmp_path_factory.mktemp("ui") / "rig.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend), copy=True)
    addon_utils.enable("momask_blender", default_set=True)
    assert prefs() is not None
    prefs().checkpoints, prefs().clip = model_paths["checkpoints"], model_paths["clip"]
    yield blend
    momask_blender.register()  # leave it registered for the other bpy test files


def prefs():
    """The preferences, looked up each time: an old reference dies with a re-registration."""
    return preferences.get(bpy.context)


@pytest.fixture
def rig(addon, model_paths):
    """A fresh copy of the scene with the rig active, and the sidebar's settings made fast."""
    if modal.busy():
        modal.request_cancel()
        modal.active.worker.join(10)
        modal.active.operator = modal.active.worker = None
    bpy.ops.wm.open_mainfile(filepath=str(addon), load_ui=True)  # new windows: stale modal handlers go
    momask_blender.register()
    obj = bpy.data.objects["Hero"]
    bh.activate(obj)
    settings = bpy.context.scene.momask
    settings.steps, settings.seconds, settings.prompt = FAST["steps"], FAST["seconds"], "a person walks forward"
    prefs().checkpoints = model_paths["checkpoints"]
    return obj


def invoking(cls, name: str):
    """A copy of operator `cls` (same bases, same code) whose execute() runs its invoke() first."""
    body = {k: v for k, v in cls.__dict__.items() if k not in ("bl_rna", "__dict__", "__weakref__")}

    def execute(self, context):
        if getattr(self, "_entered", False):  # invoke's synchronous path calls execute
            return cls.execute(self, context)
        self._entered = True
        return self.invoke(context, None)

    copy = type(f"MOMASK_TEST_OT_{name}", cls.__bases__,
                {**body, "bl_idname": f"momask_test.{name}", "execute": execute})
    bpy.utils.register_class(copy)
    return getattr(bpy.ops.momask_test, name)


@pytest.fixture
def generate(addon):
    """`bpy.ops.momask.generate` as the sidebar's Generate button calls it (invoke)."""
    op = invoking(operators.MOMASK_OT_generate, "generate")
    yield op
    drop_modal_handlers(addon)
    bpy.utils.unregister_class(bpy.types.MOMASK_TEST_OT_generate)


def drop_modal_handlers(blend) -> None:
    """Blender's event loop removes a modal handler when modal() returns FINISHED or CANCELLED; here
    nothing does, so new windows (a file loaded with its UI) drop them before their class goes."""
    bpy.ops.wm.open_mainfile(filepath=str(blend), load_ui=True)


def scene_state():
    """Everything a MoMask action may change: objects, actions, assignments, custom props, frame range."""
    objs = sorted((o.name, o.type, tuple(sorted(o.keys()))) for o in bpy.data.objects)
    acts = sorted((a.name, a.users, a.use_fake_user) for a in bpy.data.actions)
    assigned = {o.name: (o.animation_data.action.name if o.animation_data and o.animation_data.action else None)
                for o in bpy.data.objects}
    maps = {o.name: o.get(BONE_MAP_PROPERTY) for o in bpy.data.objects}
    scene = bpy.context.scene
    return objs, acts, assigned, maps, scene.frame_start, scene.frame_end, scene.frame_current


def our_types():
    found = []
    for base in (bpy.types.Operator, bpy.types.Panel, bpy.types.UIList, bpy.types.PropertyGroup,
                 bpy.types.AddonPreferences):
        found += [c.__name__ for c in base.__subclasses__()
                  if c.__name__.startswith("MOMASK_") and getattr(c, "is_registered", False)]
    return sorted(found)


# ----------------------------------------------------------------------------- registration and preferences


def test_register_and_unregister_twice_leave_no_trace(addon):
    path_before = list(sys.path)
    registered = our_types()
    assert {"MOMASK_OT_generate", "MOMASK_PT_main", "MOMASK_PG_settings", "MOMASK_AP_preferences",
            "MOMASK_UL_variations", "MOMASK_OT_install_torch"} <= set(registered)
    for _ in range(2):
        momask_blender.unregister()
        momask_blender.unregister()  # a second call is harmless
        assert our_types() == []
        assert not hasattr(bpy.types.Scene, "momask") and not hasattr(bpy.types.WindowManager, "momask_job")
        assert not any(n.startswith("MOMASK") for n in dir(bpy.types))
        assert not model_cache.loaded() and not modal.busy()
        assert not any(getattr(h, "__module__", "").startswith("momask_blender") for h in bpy.app.handlers.load_pre)
        momask_blender.register()
        momask_blender.register()  # idempotent
        assert our_types() == registered
    assert sys.path == path_before
    assert sum(getattr(h, "__module__", "").startswith("momask_blender") for h in bpy.app.handlers.load_pre) == 1
    assert bpy.context.scene.momask.prompt and bpy.context.window_manager.momask_job.state == "idle"


def test_preferences_round_trip_through_re_registration(addon, model_paths):
    prefs().threads = 2
    prefs().device = "cpu"
    momask_blender.unregister()
    momask_blender.register()
    p = prefs()
    assert (p.checkpoints, p.clip, p.threads, p.device) == (model_paths["checkpoints"], model_paths["clip"], 2, "cpu")
    items = [item[0] for item in preferences._device_items(p, bpy.context)]
    assert items[0] == "cpu" and set(items) <= {"cpu", "cuda"}
    assert ("cuda" in items) == bool(preferences.cuda_name())
    assert preferences.model_device(p) == "cpu"
    p.threads = 0


def test_scene_settings_default_to_the_official_generation_settings(addon):
    import model_core

    official = model_core.GenerationSettings()
    settings = bpy.context.scene.momask
    rna = settings.bl_rna.properties
    for name in ("steps", "guidance", "residual_guidance", "temperature", "topk"):
        assert rna[name].default == pytest.approx(getattr(official, name)), name
    assert {i.identifier for i in rna["root_motion"].enum_items} == {"full", "in-place", "keep"}


def test_operators_default_to_the_official_settings(addon):
    """Generate and the sequence use the generation defaults; range edits and extensions use the
    official editing script's residual guidance."""
    import model_core
    from model_core.settings import EDIT_RESIDUAL_GUIDANCE

    official = model_core.GenerationSettings()
    for op in (bpy.ops.momask.generate, bpy.ops.momask.generate_sequence, bpy.ops.momask.inpaint,
               bpy.ops.momask.extend):
        rna = op.get_rna_type().properties
        for name in ("steps", "guidance", "temperature", "topk"):
            assert rna[name].default == pytest.approx(getattr(official, name)), (op.idname(), name)
        editing = op.idname() in ("MOMASK_OT_inpaint", "MOMASK_OT_extend")
        want = EDIT_RESIDUAL_GUIDANCE if editing else official.residual_guidance
        assert rna["residual_guidance"].default == pytest.approx(want), op.idname()


def test_the_sidebar_asks_only_what_a_studio_server_accepts(addon):
    """Steps and variations stop at the server's limits everywhere the add-on asks for them, since
    any request may go to a shared server (model_core.settings holds the numbers)."""
    from model_core.settings import SERVER_MAX_STEPS, SERVER_MAX_VARIATIONS

    places = [bpy.context.scene.momask.bl_rna.properties] + [
        op.get_rna_type().properties for op in (bpy.ops.momask.generate, bpy.ops.momask.generate_sequence,
                                                bpy.ops.momask.inpaint, bpy.ops.momask.extend)]
    for rna in places:
        assert rna["steps"].hard_max == SERVER_MAX_STEPS
        if "variations" in rna:
            assert rna["variations"].hard_max == SERVER_MAX_VARIATIONS


def test_choices_are_the_ones_the_code_acts_on(addon):
    """Root motions are the retarget's everywhere (sidebar, operators, command line), with one set of
    labels; the Add Target menu offers a waypoint and exactly the reach targets directing knows."""
    from momask_blender.bake import build_parser
    from momask_blender.rig.directing import REACH_JOINTS
    from momask_blender.rig.retarget import ROOT_MOTIONS
    from momask_blender.scene.directing import WAYPOINT

    def items(op, prop):
        return [(i.identifier, i.name) for i in op.get_rna_type().properties[prop].enum_items]

    generate = items(bpy.ops.momask.generate, "root_motion")
    assert [i for i, _ in generate] == list(ROOT_MOTIONS)
    assert items(bpy.ops.momask.generate_sequence, "root_motion") == generate
    sidebar = bpy.context.scene.momask.bl_rna.properties["root_motion"].enum_items
    assert [(i.identifier, i.name) for i in sidebar] == generate
    assert tuple(build_parser()._option_string_actions["--root-motion"].choices) == tuple(ROOT_MOTIONS)
    targets = items(bpy.ops.momask.add_target, "kind")
    assert [i for i, _ in targets] == [WAYPOINT, *REACH_JOINTS] and ("LEFT_HAND", "Left Hand") in targets


def test_panel_polls(rig):
    context = bpy.context
    types = bpy.types
    assert types.MOMASK_PT_main.poll(context) and types.MOMASK_PT_advanced.poll(context)
    assert types.MOMASK_PT_bone_map.poll(context)  # an armature is active
    assert not types.MOMASK_PT_variations.poll(context)  # no variations yet
    bpy.context.view_layer.objects.active = None
    assert not types.MOMASK_PT_bone_map.poll(context) and types.MOMASK_PT_main.poll(context)


# ----------------------------------------------------------------------------- generate, variations, undo


def test_generate_from_the_sidebar_settings_with_variations(rig, generate):
    settings = bpy.context.scene.momask
    settings.variations, settings.seed = 3, 11
    bpy.context.scene.frame_set(1)
    assert generate() == {"FINISHED"}  # background: runs synchronously
    job = operators.last_job
    gen = job.generation
    assert (gen.prompt, gen.seed, gen.variations, gen.steps, gen.seconds) == ("a person walks forward", 11, 3, 2, 1.0)
    names = [it.action.name for it in settings.variation_items]
    assert names == [f"a person walks forward v{k}" for k in (1, 2, 3)]
    assert [it.seed for it in settings.variation_items] == [11, 12, 13]
    assert rig.animation_data.action.name == names[0] and settings.variation_armature == rig.name
    assert bpy.types.MOMASK_PT_variations.poll(bpy.context)
    assert bpy.context.window_manager.momask_job.state == "done"

    settings.variation_index = 2  # one click in the list
    assert rig.animation_data.action.name == names[2]
    assert bpy.ops.momask.use_variation(index=1) == {"FINISHED"}
    assert rig.animation_data.action.name == names[1] and settings.variation_index == 1
    with pytest.raises(RuntimeError, match="no variation 9"):
        bpy.ops.momask.use_variation(index=8)
    assert all(a in bpy.data.actions for a in names)  # switching deletes nothing

    prop = bpy.data.objects.new("Prop", None)  # another object plays variation 3 in its NLA: that one stays
    bpy.context.scene.collection.objects.link(prop)
    prop.animation_data_create().nla_tracks.new().strips.new("walk", 1, bpy.data.actions[names[2]])
    assert bpy.ops.momask.remove_other_variations() == {"FINISHED"}
    assert sorted(a.name for a in bpy.data.actions if a.name.startswith("a person")) == [names[1], names[2]]
    assert rig.animation_data.action.name == names[1] and len(settings.variation_items) == 0
    assert not bpy.data.actions[names[1]].use_fake_user and bpy.data.actions[names[1]].users == 1
    assert not bpy.types.MOMASK_OT_remove_other_variations.poll(bpy.context)


def test_the_threads_preference_applies_to_every_job_that_runs_the_model(rig, generate):
    """Generate, Extend and Generate Sequence all run the model on the Threads the preferences set."""
    import torch

    before = torch.get_num_threads()
    prefs().threads = 1
    try:
        for run in (lambda: generate(),
                    lambda: bpy.ops.momask.extend(prompt="a person walks", seconds=0.5, seed=1, steps=2),
                    lambda: bpy.ops.momask.generate_sequence(prompt="a person walks", seconds=0.5, steps=2)):
            torch.set_num_threads(3)  # whatever ran before: the job sets its own
            assert run() == {"FINISHED"}
            assert torch.get_num_threads() == 1
    finally:
        prefs().threads = 0
        torch.set_num_threads(before)


def test_each_action_is_one_undoable_operator():
    for op in ("generate", "use_variation", "remove_other_variations", "randomize_seed", "detect_bone_map",
               "load_bone_map"):
        assert "UNDO" in getattr(getattr(bpy.types, f"MOMASK_OT_{op}"), "bl_options", ()), op
    for op in ("cancel_job", "unload_model", "install_torch", "install_weights_run", "download_weights"):
        assert "UNDO" not in getattr(getattr(bpy.types, f"MOMASK_OT_{op}"), "bl_options", ()), op  # no scene data


def test_undo_after_generate_and_after_switching(rig, generate):
    bpy.ops.ed.undo_push(message="before")
    if not bpy.ops.ed.undo.poll():
        pytest.skip("Blender as a module in background mode has no undo stack (ed.undo poll fails); "
                    "see test_each_action_is_one_undoable_operator and the unchanged-scene tests")
    settings = bpy.context.scene.momask
    settings.variations = 2
    generate()
    bpy.ops.momask.use_variation(index=1)
    bpy.ops.ed.undo()
    assert bpy.data.objects[rig.name].animation_data.action.name.endswith("v1")
    bpy.ops.ed.undo()
    assert not any(a.name.startswith("a person") for a in bpy.data.actions)


def test_small_operators(rig, generate):
    settings = bpy.context.scene.momask
    seed = settings.seed
    assert bpy.ops.momask.randomize_seed() == {"FINISHED"} and settings.seed != seed
    assert not bpy.ops.momask.cancel_job.poll()  # nothing runs
    generate()
    assert model_cache.loaded() and bpy.ops.momask.unload_model.poll()
    assert bpy.ops.momask.unload_model() == {"FINISHED"} and not model_cache.loaded()
    assert not bpy.ops.momask.unload_model.poll()


# ----------------------------------------------------------------------------- bone-map editor


def test_bone_map_editor_shows_the_detected_map_then_stores_edits(rig, tmp_path):
    editor = bpy.context.scene.momask.bone_map
    assert BONE_MAP_PROPERTY not in rig
    detected = {j: getattr(editor, j) for j in JOINTS}
    assert detected["pelvis"] == "mixamorig:Hips" and sum(bool(b) for b in detected.values()) >= 20
    assert BONE_MAP_PROPERTY not in rig  # drawing the editor stores nothing

    editor.left_collar = ""  # clear a joint
    stored = json.loads(rig[BONE_MAP_PROPERTY])
    assert "left_collar" not in stored and stored["pelvis"] == "mixamorig:Hips" and editor.left_collar == ""
    editor.spine3 = "mixamorig:Neck"  # a bone another joint had: it moves
    stored = json.loads(rig[BONE_MAP_PROPERTY])
    assert stored["spine3"] == "mixamorig:Neck" and "neck" not in stored and editor.neck == ""
    editor.head = "No Such Bone"  # a typed name that is no bone: nothing changes
    assert json.loads(rig[BONE_MAP_PROPERTY]) == stored

    preset = tmp_path / "mixamo.json"
    assert bpy.ops.momask.save_bone_map(filepath=str(preset)) == {"FINISHED"}
    assert bpy.ops.momask.detect_bone_map() == {"FINISHED"}
    assert json.loads(rig[BONE_MAP_PROPERTY]) == {j: b for j, b in detected.items() if b}
    assert bpy.ops.momask.load_bone_map(filepath=str(preset)) == {"FINISHED"}
    assert json.loads(rig[BONE_MAP_PROPERTY]) == stored
    (tmp_path / "bad.json").write_text('{"pelvis": "Tail"}')
    with pytest.raises(RuntimeError, match="does not have"):
        bpy.ops.momask.load_bone_map(filepath=str(tmp_path / "bad.json"))
    with pytest.raises(RuntimeError, match="no preset file"):
        bpy.ops.momask.save_bone_map(filepath="")

    bpy.context.view_layer.objects.active = None
    assert not bpy.ops.momask.detect_bone_map.poll() and editor.pelvis == ""


# ----------------------------------------------------------------------------- bad input: a message, nothing changed


@pytest.mark.parametrize("case", ["no_armature", "not_armature", "linked", "unmappable", "empty_prompt",
                                  "no_model_folder", "broken_checkpoints"])
def test_bad_input_through_the_sidebar_is_a_message(case, rig, generate, tmp_path):
    settings = bpy.context.scene.momask
    bpy.ops.mesh.primitive_cube_add()
    cube = bpy.context.object
    bh.activate(rig)
    if case == "no_armature":
        bpy.context.view_layer.objects.active = None
    elif case == "not_armature":
        bh.activate(cube)
    elif case == "linked":
        lib = tmp_path / "lib.blend"
        bpy.data.libraries.write(str(lib), {rig}, fake_user=True)
        with bpy.data.libraries.load(str(lib), link=True) as (src, dst):
            dst.objects = list(src.objects)
        bpy.context.scene.collection.objects.link(dst.objects[0])
        bpy.context.view_layer.objects.active = dst.objects[0]
    elif case == "unmappable":
        rig[BONE_MAP_PROPERTY] = json.dumps({"head": "mixamorig:Head"})
    elif case == "empty_prompt":
        settings.prompt = "   "
    elif case == "no_model_folder":
        prefs().checkpoints = ""
    elif case == "broken_checkpoints":
        (tmp_path / "t2m").mkdir()
        (tmp_path / "t2m" / "opt.txt").write_text("garbage")
        prefs().checkpoints = str(tmp_path)
    before = scene_state()
    with pytest.raises(RuntimeError) as err:
        generate()
    message = str(err.value)
    expected = {"no_armature": "no active object", "not_armature": "not an armature", "linked": "linked",
                "unmappable": "left_hip", "empty_prompt": "prompt is empty", "no_model_folder": "Preferences",
                "broken_checkpoints": "model"}[case]
    assert expected in message and "Traceback" not in message and "internal error" not in message, message
    assert scene_state() == before
    job = bpy.context.window_manager.momask_job
    assert job.state == "failed" and expected in job.message and not job.running
    assert operators.last_error == job.message


# ----------------------------------------------------------------------------- the modal path


class Event(SimpleNamespace):
    """What Blender's event loop hands to modal(): only `type` and `value` are read."""


TIMER = Event(type="TIMER", value="NOTHING")
ESC = Event(type="ESC", value="PRESS")


@pytest.fixture
def windowed(monkeypatch):
    """Take the modal route although Blender runs in background mode (the window exists, its loop doesn't)."""
    monkeypatch.setattr(modal, "synchronous", lambda context: False)
    yield
    if modal.busy():
        modal.request_cancel()
        modal.active.worker.join(10)
        modal.active.operator = modal.active.worker = None


def pump(limit: float = 30.0):
    """Deliver TIMER events to the running operator until it returns something else; (result, displays seen)."""
    op = modal.active.operator
    seen, deadline = [], time.monotonic() + limit
    while time.monotonic() < deadline:
        result = op.modal(bpy.context, TIMER)
        job = bpy.context.window_manager.momask_job
        seen.append((job.state, job.stage, round(job.progress, 3), job.running))
        if result != {"RUNNING_MODAL"}:
            return result, seen
        time.sleep(0.01)
    raise AssertionError("the job did not finish")


def test_modal_generate_shows_progress_then_applies(rig, generate, windowed):
    before = scene_state()
    model_cache.unload()
    assert generate() == {"RUNNING_MODAL"}
    assert modal.busy() and bpy.context.window_manager.momask_job.running
    assert scene_state() == before  # nothing written while the model works
    with pytest.raises(RuntimeError, match="still running"):
        generate()  # a second job from the sidebar is refused with a message
    with pytest.raises(RuntimeError, match="still running"):
        bpy.ops.momask.generate(prompt="a person jumps")  # from a script too
    result, seen = pump()
    assert result == {"FINISHED"} and not modal.busy()  # FINISHED: Blender pushes the one undo step
    stages = [s for _, s, _, running in seen if running]
    assert stages and {s.split("…")[0] for s in stages} <= {"loading model", "text", "base tokens",
                                                             "residual layers", "decode", "bake", "applying"}
    progress = [p for *_, p, running in seen if running]
    assert progress == sorted(progress)
    job = bpy.context.window_manager.momask_job
    assert job.state == "done" and not job.running and job.progress == 1.0 and "frames on" in job.message
    assert rig.animation_data.action.name == "a person walks forward"
    assert scene_state() != before


def test_esc_cancels_and_leaves_the_scene_as_it_was(rig, generate, windowed):
    before = scene_state()
    model_cache.unload()  # the load gives time to cancel during "loading model"
    assert generate() == {"RUNNING_MODAL"}
    op = modal.active.operator
    assert op.modal(bpy.context, ESC) == {"RUNNING_MODAL"}
    assert bpy.context.window_manager.momask_job.cancel_requested
    result, _ = pump()
    job = bpy.context.window_manager.momask_job
    assert result == {"CANCELLED"} and job.state == "cancelled" and job.message == "MoMask cancelled"
    assert scene_state() == before and not modal.busy()


def test_cancel_button_during_the_model_run(rig, generate, windowed):
    before = scene_state()
    bpy.context.scene.momask.steps = 50  # long enough to catch it between two model passes
    assert generate() == {"RUNNING_MODAL"}
    op = modal.active.operator
    while bpy.context.window_manager.momask_job.stage in ("", "loading model", "text"):
        assert op.modal(bpy.context, TIMER) == {"RUNNING_MODAL"}
        time.sleep(0.005)
    assert bpy.ops.momask.cancel_job.poll() and bpy.ops.momask.cancel_job() == {"FINISHED"}
    result, _ = pump()
    assert result == {"CANCELLED"} and scene_state() == before


def test_a_failure_in_the_worker_is_a_message_and_changes_nothing(rig, generate, windowed, tmp_path):
    (tmp_path / "t2m").mkdir()
    (tmp_path / "t2m" / "opt.txt").write_text("garbage")
    preferences.get(bpy.context).checkpoints = str(tmp_path)
    before = scene_state()
    assert generate() == {"RUNNING_MODAL"}
    result, _ = pump()
    job = bpy.context.window_manager.momask_job
    assert result == {"CANCELLED"} and job.state == "failed" and "model" in job.message
    assert "internal error" not in job.message and scene_state() == before


def test_armature_deleted_while_the_model_runs(rig, generate, windowed):
    assert generate() == {"RUNNING_MODAL"}
    bpy.data.objects.remove(rig)
    before = scene_state()
    result, _ = pump()
    job = bpy.context.window_manager.momask_job
    assert result == {"CANCELLED"} and "is gone" in job.message and scene_state() == before


def test_opening_another_file_drops_the_running_job(rig, generate, windowed, addon):
    assert generate() == {"RUNNING_MODAL"}
    worker = modal.active.worker
    bpy.ops.wm.open_mainfile(filepath=str(addon), load_ui=False)  # windows (and our handler) stay
    assert not modal.busy() and worker.cancelled and worker.join(30)
    assert not any(a.name.startswith("a person") for a in bpy.data.actions)  # nothing lands in the new file


# ----------------------------------------------------------------------------- installs from the preferences


def test_installs_without_online_access_explain_what_to_do(addon):
    assert not bpy.app.online_access
    with pytest.raises(RuntimeError, match="Allow Online Access"):
        bpy.ops.momask.install_torch()
    with pytest.raises(RuntimeError, match="online access"):
        bpy.ops.momask.download_weights()
    assert bpy.ops.momask.copy_torch_command() == {"FINISHED"}  # (a headless Blender has no clipboard to check)


def test_install_weights_from_a_folder_sets_the_preferences(addon, rig, model_paths, tmp_path, monkeypatch, windowed):
    monkeypatch.setattr(preferences, "user_dir", lambda create=False: tmp_path / "user")
    install = invoking(preferences.MOMASK_OT_install_weights_run, "install")
    blend, addon = addon, prefs()
    old = addon.checkpoints, addon.clip
    try:
        assert install(filepath=model_paths["checkpoints"]) == {"RUNNING_MODAL"}
        result, seen = pump()
        assert result == {"FINISHED"}, bpy.context.window_manager.momask_job.message
        assert addon.checkpoints == str(tmp_path / "user" / "checkpoints") and addon.clip == old[1]
        assert preferences.model_status.checkpoints(addon.checkpoints).ok
        with pytest.raises(RuntimeError, match="not OpenAI's ViT-B/32"):  # the small test CLIP: refused, not copied
            bpy.ops.momask.install_weights_run(filepath=model_paths["clip"])
        assert not (tmp_path / "user" / "clip" / "ViT-B-32.pt").exists()
        with pytest.raises(RuntimeError, match="does not exist"):
            bpy.ops.momask.install_weights_run(filepath=str(tmp_path / "nothing.zip"))
    finally:
        addon.checkpoints, addon.clip = old
        drop_modal_handlers(blend)
        bpy.utils.unregister_class(bpy.types.MOMASK_TEST_OT_install)
