"""The sidebar's pure parts, without Blender: job states, worker, queue draining, progress and cancel,
variation bookkeeping, bone-map editing and presets, the preferences' file status lines."""
from __future__ import annotations

import json
import queue
import threading
import time
from pathlib import Path

import pytest

from momask_blender.errors import MomaskError
from momask_blender.jobs import worker
from momask_blender.rig import bone_map, bone_rows
from momask_blender.rig.bone_map import BoneInfo, load_preset, save_preset
from momask_blender.rig.skeleton import JOINTS
from momask_blender.scene import variations
from momask_blender.setup import model_status

# ----------------------------------------------------------------------------- state machine


def test_a_job_goes_through_its_states_in_order():
    s = worker.JobState(label="MoMask")
    assert s.state == worker.IDLE and not s.active
    s.start()
    s.handle(worker.Progress(worker.LOADING_STAGE, 0.0))
    assert s.state == worker.LOADING and "loading model" in s.status_text()
    s.handle(worker.Progress("text", 0.0))
    s.handle(worker.Progress("base tokens", 0.4))
    assert (s.state, s.stage, s.fraction) == (worker.RUNNING, "base tokens", 0.4)
    assert s.status_text() == "MoMask: base tokens 40% (Esc to cancel)"
    s.handle(worker.Finished("result"))
    assert s.state == worker.APPLYING and s.result == "result" and s.active
    s.applied("done it")
    assert (s.state, s.message, s.fraction, s.result) == (worker.DONE, "done it", 1.0, None)
    assert not s.active and s.finished
    s.start()  # a finished job may run again, from a clean slate
    assert (s.state, s.message, s.fraction) == (worker.RUNNING, "", 0.0)


@pytest.mark.parametrize("end, state", [(worker.Failed("no armature"), worker.FAILED),
                                        (worker.Stopped(), worker.CANCELLED)])
def test_failed_and_cancelled_runs_end_and_ignore_late_messages(end, state):
    s = worker.JobState(label="MoMask")
    s.start()
    s.handle(worker.Progress("decode", 0.9))
    s.handle(end)
    assert s.state == state and s.finished
    assert s.message == ("no armature" if state == worker.FAILED else "MoMask cancelled")
    s.handle(worker.Progress("decode", 1.0))
    s.handle(worker.Finished(1))
    assert s.state == state and s.result is None


def test_illegal_transitions_are_refused():
    s = worker.JobState()
    with pytest.raises(worker.TransitionError):
        s.to(worker.DONE)
    s.start()
    with pytest.raises(worker.TransitionError):
        s.applied("too early")  # only after the result arrived
    s.handle(worker.Finished(None))
    with pytest.raises(worker.TransitionError):
        s.to(worker.CANCELLED)  # applying runs on the main thread: nothing cancels it halfway
    for state, targets in worker.TRANSITIONS.items():
        assert set(targets) <= set(worker.STATES), state


def test_progress_never_goes_back_and_stays_within_bounds():
    s = worker.JobState()
    s.start()
    for stage, f in [("text", 0.0), ("base tokens", 0.5), ("base tokens", 0.3), ("decode", 7.0)]:
        s.handle(worker.Progress(stage, f))
    assert s.fraction == 1.0 and s.stage == "decode"


def test_status_text_says_what_happens():
    s = worker.JobState(label="MoMask")
    s.start()
    s.handle(worker.Progress(worker.LOADING_STAGE, 0.0))
    assert s.status_text(now=s.started + 3.2) == "MoMask: loading model… 3 s (Esc to cancel)"
    s.handle(worker.Progress("residual layers", 0.7))
    s.cancel_requested = True
    assert s.status_text() == "MoMask: cancelling…"
    s.handle(worker.Stopped())
    assert s.status_text() == "MoMask cancelled"


# ----------------------------------------------------------------------------- queue and worker


def test_drain_folds_everything_queued_without_blocking():
    q: queue.Queue = queue.Queue()
    s = worker.JobState()
    s.start()
    assert worker.drain(q, s) == []
    for k in range(5):
        q.put(worker.Progress("base tokens", k / 10))
    q.put(worker.Finished(42))
    msgs = worker.drain(q, s)
    assert len(msgs) == 6 and s.state == worker.APPLYING and s.result == 42 and q.empty()
    for _ in range(5):
        q.put(worker.Progress("x", 0.0))
    assert len(worker.drain(q, s, limit=2)) == 2 and q.qsize() == 3


def _run_until_done(running: worker.Worker, state: worker.JobState, timeout: float = 10.0) -> list:
    """What modal() does on each timer event, without Blender."""
    seen, deadline = [], time.monotonic() + timeout
    while not (state.finished or state.state == worker.APPLYING):
        assert time.monotonic() < deadline, "worker did not finish"
        seen += worker.drain(running.queue, state)
        time.sleep(0.005)
    return seen


def test_worker_reports_progress_then_the_result_from_another_thread():
    threads = []

    def compute(progress):
        threads.append(threading.current_thread())
        for k in range(4):
            progress("base tokens", k / 4)
        return "motion"

    s = worker.JobState()
    s.start()
    w = worker.Worker(compute).start()
    seen = _run_until_done(w, s)
    assert threads[0] is not threading.main_thread()
    assert [m.fraction for m in seen if isinstance(m, worker.Progress)] == [0, 0.25, 0.5, 0.75]
    assert isinstance(seen[-1], worker.Finished) and s.result == "motion"
    assert w.join(2)


def test_cancel_stops_the_worker_at_its_next_report_and_drops_the_result():
    started, release = threading.Event(), threading.Event()
    reached = []

    def compute(progress):
        progress("text", 0.0)
        started.set()
        release.wait(5)
        for k in range(100):
            progress("base tokens", k / 100)
            reached.append(k)
        return "never used"

    s = worker.JobState()
    s.start()
    w = worker.Worker(compute).start()
    assert started.wait(5)
    w.cancel()
    release.set()
    seen = _run_until_done(w, s)
    assert s.state == worker.CANCELLED and reached == [] and isinstance(seen[-1], worker.Stopped)
    assert s.result is None


def test_cancel_after_the_last_report_still_drops_the_result():
    done = threading.Event()

    def compute(progress):
        progress("decode", 0.9)
        done.wait(5)
        return "late"

    w = worker.Worker(compute).start()
    w.cancel()
    done.set()
    assert w.join(5)
    msgs = list(w.queue.queue)
    assert isinstance(msgs[-1], worker.Stopped)


def test_a_computation_that_stops_its_own_way_counts_as_cancelled():
    class DownloadCancelled(Exception):
        pass

    def compute(progress):
        while not progress.cancel_event.is_set():
            progress.note("downloading", 0.1)  # never raises
            time.sleep(0.001)
        raise DownloadCancelled("stopped")

    w = worker.Worker(compute).start()
    time.sleep(0.02)
    w.cancel()
    assert w.join(5)
    assert isinstance(list(w.queue.queue)[-1], worker.Stopped)


def test_expected_errors_give_their_message_and_bugs_say_internal_error(capsys):
    def user_error(progress):
        raise MomaskError("the prompt is empty: describe the motion in a sentence")

    def bug(progress):
        return {}["missing"]

    assert worker.run_sync(user_error, expected=(MomaskError,)) == \
        worker.Failed("the prompt is empty: describe the motion in a sentence")
    failed = worker.run_sync(bug, expected=(MomaskError,))
    assert failed.internal and failed.message.startswith("internal error") and "KeyError" in failed.message
    assert "Traceback" in capsys.readouterr().err  # the bug's traceback goes to the console


def test_run_sync_reports_progress_and_returns_the_result():
    got = []
    out = worker.run_sync(lambda p: (p("text", 0.0), p("decode", 0.9), "m")[-1], on_progress=lambda s, f: got.append(s))
    assert out == worker.Finished("m") and got == ["text", "decode"]


def test_scaled_and_byte_progress():
    got = []
    part = worker.scaled(lambda s, f: got.append((s, round(f, 3))), 0.3, 1.0)
    part("models", 0.0)
    part("models", 0.5)
    part("models", 2.0)
    assert got == [("models", 0.3), ("models", 0.65), ("models", 1.0)]
    got.clear()
    report = worker.bytes_progress(lambda s, f: got.append((s, f)), "ViT-B-32.pt")
    report(2**20, 4 * 2**20)
    report(3 * 2**20, None)
    assert got == [("ViT-B-32.pt 1/4 MB", 0.25), ("ViT-B-32.pt 3 MB", 0.0)]


# ----------------------------------------------------------------------------- variations


def test_variation_seeds_labels_and_indices():
    assert variations.seeds(7, 3) == [7, 8, 9]
    es = variations.entries(["walk v1", "walk v2"], 7)
    assert es == [variations.Entry("walk v1", 7), variations.Entry("walk v2", 8)]
    assert variations.label(1, es[1]) == "v2  ·  seed 8"
    assert variations.clamp(5, 3) == 2 and variations.clamp(-1, 3) == 0 and variations.clamp(4, 0) == 0


def test_removing_the_other_variations_keeps_the_chosen_one_and_what_others_use():
    names = ["walk v1", "walk v2", "walk v3", "walk v4"]
    assert variations.to_remove(names, 1) == (["walk v1", "walk v3", "walk v4"], [])
    assert variations.to_remove(names, 0, used_elsewhere=["walk v3", "walk v1"]) == (["walk v2", "walk v4"],
                                                                                     ["walk v3"])
    with pytest.raises(IndexError):
        variations.to_remove(names, 4)


# ----------------------------------------------------------------------------- bone map editing

BONES = [BoneInfo("Hips", None), BoneInfo("LeftUpLeg", "Hips"), BoneInfo("RightUpLeg", "Hips"),
         BoneInfo("Spine", "Hips"), BoneInfo("Head", "Spine"), BoneInfo("Prop", None)]
NAMES = [b.name for b in BONES]


def test_set_joint_assigns_clears_and_moves_a_bone_between_joints():
    bmap = {"pelvis": "Hips", "left_hip": "LeftUpLeg"}
    new, moved = bone_rows.set_joint(bmap, "right_hip", "RightUpLeg", NAMES)
    assert new == {"pelvis": "Hips", "left_hip": "LeftUpLeg", "right_hip": "RightUpLeg"} and moved is None
    new, moved = bone_rows.set_joint(new, "spine1", "LeftUpLeg", NAMES)
    assert moved == "left_hip" and "left_hip" not in new and new["spine1"] == "LeftUpLeg"
    assert list(new) == [j for j in JOINTS if j in new]  # always in joint order
    new, _ = bone_rows.set_joint(new, "pelvis", "", NAMES)
    assert "pelvis" not in new
    assert bmap == {"pelvis": "Hips", "left_hip": "LeftUpLeg"}  # the input is never changed
    with pytest.raises(MomaskError, match="no bone 'Tail'"):
        bone_rows.set_joint(bmap, "head", "Tail", NAMES)
    with pytest.raises(MomaskError, match="unknown joint"):
        bone_rows.set_joint(bmap, "tail", "Head", NAMES)


def test_rows_flag_missing_and_required_joints():
    rows = bone_rows.rows({"pelvis": "Hips", "head": "Head"})
    assert [r.joint for r in rows] == list(JOINTS) and len(rows) == 22
    by = {r.joint: r for r in rows}
    assert not by["pelvis"].missing and by["pelvis"].required
    assert by["left_hip"].missing and by["left_hip"].required
    assert by["left_wrist"].missing and not by["left_wrist"].required
    assert bone_map.missing_required({"pelvis": "Hips"}) == ["left_hip", "right_hip"]
    line = bone_rows.summary({"pelvis": "Hips", "head": "Head"}, "stored")
    assert line.startswith("2 of 22 joints mapped (stored); missing: left_hip, right_hip")


def test_the_editor_shows_the_stored_map_first_else_the_detected_one():
    found = bone_rows.effective(None, BONES)
    detected, source, problems = found.bone_map, found.source, found.problems
    assert source == bone_rows.DETECTED and detected["pelvis"] == "Hips" and problems == []
    stored = json.dumps({"pelvis": "Hips", "head": "Gone", "tail": "Prop", "spine1": "Hips"})
    shown = bone_rows.effective(stored, BONES)
    assert shown.source == bone_rows.STORED and shown.bone_map == {"pelvis": "Hips"}
    assert shown.problems == ["head: no bone 'Gone'", "unknown joint 'tail'", "spine1: bone 'Hips' is already pelvis"]
    shown = bone_rows.effective("{not json", BONES)
    assert shown.source == bone_rows.DETECTED and "JSON" in shown.problems[0]


def test_presets_round_trip_and_get_safe_file_names(tmp_path: Path):
    bmap, _ = bone_rows.set_joint({"pelvis": "Hips"}, "left_hip", "LeftUpLeg", NAMES)
    name = bone_rows.preset_name("../rig: Hero/1")
    assert "/" not in name and name.endswith(".json") and not name.startswith(".")
    assert bone_rows.preset_name("") == "bone_map.json"
    save_preset(tmp_path / name, bmap, "Hero")
    assert sorted(tmp_path.glob("*.json")) == [tmp_path / name]  # written under its safe name
    assert load_preset(tmp_path / name, NAMES) == bmap
    with pytest.raises(MomaskError, match="does not have"):
        load_preset(tmp_path / name, ["Hips"])  # a preset for another rig: refused, with the reason


# ----------------------------------------------------------------------------- preferences' status lines


def test_status_lines_for_the_reference_models(reference_dir: Path, tmp_path: Path):
    ok = model_status.checkpoints(str(reference_dir / "checkpoints"))
    assert ok.ok and ok.text.startswith("Found: t2m_") and ok.missing == ()
    assert model_status.checkpoints(str(reference_dir / "checkpoints" / "t2m")).ok
    clip = model_status.clip(str(reference_dir / "clip" / "ViT-B-32.pt"))
    assert clip.ok and "not verified" in clip.text  # the small test CLIP is not OpenAI's file

    assert not model_status.checkpoints("").ok and "Not set" in model_status.checkpoints("").text
    assert "not found" in model_status.checkpoints(str(tmp_path / "nope")).text
    assert "No t2m/" in model_status.checkpoints(str(tmp_path)).text
    (tmp_path / "t2m").mkdir()
    assert "No MoMask models" in model_status.checkpoints(str(tmp_path)).text
    assert "File not found" in model_status.clip(str(tmp_path / "ViT-B-32.pt")).text
    assert "is a folder" in model_status.clip(str(tmp_path)).text


def test_status_line_lists_missing_checkpoint_files(reference_dir: Path, tmp_path: Path):
    import shutil

    copy = tmp_path / "checkpoints"
    shutil.copytree(reference_dir / "checkpoints", copy)
    weights = next(copy.glob("t2m/t2m_*/model/latest.tar"))
    weights.unlink()
    (copy / "t2m" / "length_estimator" / "model" / "finest.tar").unlink()
    status = model_status.checkpoints(str(copy))
    assert not status.ok and status.text.startswith("Missing 2 of 9 files")
    assert set(status.missing) == {f"{weights.parent.parent.name}/model/latest.tar",
                                   "length_estimator/model/finest.tar"}


def test_status_line_agrees_with_the_loader(reference_dir: Path, tmp_path: Path):
    """Two masked transformers for one RVQ: the loader asks for a name, so the line can't say Found."""
    import shutil

    copy = tmp_path / "checkpoints"
    shutil.copytree(reference_dir / "checkpoints", copy)
    first = next(copy.glob("t2m/t2m_*"))
    shutil.copytree(first, first.with_name(first.name + "_again"))
    status = model_status.checkpoints(str(copy))
    assert not status.ok and "several masked transformers" in status.text
