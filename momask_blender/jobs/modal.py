"""Modal operators for slow work: the model in a worker thread, progress in the panel, Esc to cancel.

A job is three steps:

    prepare(context) -> data      main thread; reads bpy, checks the input, changes nothing
    compute(data, progress)       worker thread; plain data only, never bpy; returns a result
    apply(context, result) -> str main thread; writes the scene; returns the message to report

How an operator plugs in (the generate operator in `operators.py` is the full example):

    class MOMASK_OT_inpaint(modal.ModalJobOperator, bpy.types.Operator):
        bl_idname = "momask.inpaint"
        bl_label = "Regenerate Range"
        bl_options = {"REGISTER", "UNDO"}     # UNDO: one undo step when the job has been applied
        job_label = "Inpainting"               # the status bar's and the panel's name for it

        def job_prepare(self, context): ...    # raise MomaskError for bad input: reported, nothing changed
        def job_compute(self, data, progress): # call progress(stage, fraction) often: that is where
            ...                                # a cancel takes effect (it raises JobCancelled)
        def job_apply(self, context, result): ...; return "Regenerated frames 40-80"

`ModalJobOperator` supplies `invoke` (worker thread + window-manager timer, or synchronous under
`bpy.app.background` / without a window), `execute` (synchronous: scripts, the command line,
the redo panel), `modal` (drains the queue on TIMER events, updates the WindowManager's
`momask_job` properties and the status bar, redraws the sidebar, Esc cancels) and `cancel`.
Only one job runs at a time: a second one is refused with a report. A cancelled or failed job
never reaches `job_apply`, so the scene is as it was; a finished one returns {'FINISHED'} from
`modal`, which is when Blender pushes the operator's single undo step. Opening another file drops
the running job (its result belongs to the file it was started in).

`job_errors` lists the exception types whose text is a user-facing message (MomaskError by
default); anything else is reported as an internal error with its traceback in the console.
"""
from __future__ import annotations

import bpy

from model_core.errors import ModelError

from ..errors import MomaskError
from .worker import (
    APPLYING,
    CANCELLED,
    DONE,
    FAILED,
    LOADING,
    Finished,
    JobState,
    Reporter,
    Stopped,
    Worker,
    drain,
    run_sync,
)

TIMER_STEP = 0.1  # seconds between queue drains: smooth enough for a progress bar, cheap when idle
REDRAW_AREAS = ("PREFERENCES", "PROPERTIES")


class _Active:
    """The one job that may run at a time (module state: the WindowManager holds only its display)."""

    operator = None
    worker: Worker | None = None
    state: JobState | None = None


active = _Active()


def synchronous(context) -> bool:
    """Run jobs in a row on this thread: no window to animate a progress bar in (background, scripts)."""
    return bpy.app.background or context.window is None


def busy() -> bool:
    return active.worker is not None


def request_cancel() -> bool:
    """Ask the running job to stop (the panel's Cancel button). True if there was one."""
    if active.worker is None or active.state is None:
        return False
    active.worker.cancel()
    active.state.cancel_requested = True
    return True


def busy_message() -> str:
    label = active.state.label if active.state else "a MoMask job"
    return f"{label} is still running: wait for it or press Esc to cancel it first"


@bpy.app.handlers.persistent
def _on_load_pre(*_args) -> None:
    """Another file is being opened: the running job's result belongs to the old one, drop it."""
    if active.worker is not None:
        request_cancel()
        if active.state is not None and active.state.active and active.state.state != APPLYING:
            active.state.handle(Stopped())
        active.operator = active.worker = None


def register_handlers() -> None:
    if _on_load_pre not in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.append(_on_load_pre)


def unregister_handlers() -> None:
    while _on_load_pre in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.remove(_on_load_pre)


# ----------------------------------------------------------------------------- the WindowManager's display


def show(context, state: JobState) -> None:
    """Mirror `state` into `WindowManager.momask_job` (never saved) for the panel to draw."""
    wm = context.window_manager
    props = getattr(wm, "momask_job", None)
    if props is None:
        return
    props.state = state.state
    props.label = state.label
    props.stage = f"loading model… {state.elapsed():.0f} s" if state.state == LOADING else state.stage
    props.progress = state.fraction
    props.message = state.message
    props.cancel_requested = state.cancel_requested
    props.running = state.active


def redraw(context) -> None:
    wm = context.window_manager
    for window in wm.windows:
        screen = window.screen
        if screen is None:
            continue
        for area in screen.areas:
            if area.type == "VIEW_3D":  # only the sidebar: the viewport itself has nothing new to show
                for region in area.regions:
                    if region.type == "UI":
                        region.tag_redraw()
            elif area.type in REDRAW_AREAS:
                area.tag_redraw()


def _set_status(context, text: str | None) -> None:
    workspace = getattr(context, "workspace", None)
    if workspace is not None:
        workspace.status_text_set(text)


# ----------------------------------------------------------------------------- the operator mixin


class ModalJobOperator:
    """Mixin for a `bpy.types.Operator` that runs prepare → compute → apply (see the module docstring)."""

    job_label = "MoMask"
    job_errors: tuple[type[BaseException], ...] = (MomaskError, ModelError)  # ModelError: model_core's checks

    # --- the three steps, for subclasses

    def job_prepare(self, context):
        raise NotImplementedError

    def job_compute(self, data, progress: Reporter):
        raise NotImplementedError

    def job_apply(self, context, result) -> str:
        raise NotImplementedError

    def job_finished(self, context, state: JobState) -> None:
        """Called once at the end, whatever the outcome (done, failed, cancelled); for bookkeeping."""

    # --- synchronous: scripts, tests, the command line, bpy.app.background

    def _begin(self, context):
        """Refuse a second job; else start one and run its prepare step on the main thread.

        Returns (state, data), or (a finished operator result, None) when it cannot start."""
        if busy():
            self.report({"ERROR"}, busy_message())
            return {"CANCELLED"}, None
        state = JobState(label=self.job_label)
        state.start()
        try:
            return state, self.job_prepare(context)
        except self.job_errors as err:
            return self._end(context, state, str(err), failed=True), None

    def execute(self, context):
        state, data = self._begin(context)
        if not isinstance(state, JobState):
            return state
        result = run_sync(lambda progress: self.job_compute(data, progress), expected=self.job_errors)
        state.handle(result)
        if isinstance(result, Finished):
            return self._apply(context, state)
        return self._end(context, state, state.message, failed=True)

    # --- from the UI: a worker thread and a timer

    def invoke(self, context, event):
        if synchronous(context):
            return self.execute(context)
        state, data = self._begin(context)
        if not isinstance(state, JobState):
            return state
        worker = Worker(lambda progress: self.job_compute(data, progress), expected=self.job_errors,
                             name=f"momask-{self.job_label.lower()}")
        active.operator, active.worker, active.state = self, worker, state
        wm = context.window_manager
        self._timer = wm.event_timer_add(TIMER_STEP, window=context.window)
        wm.modal_handler_add(self)
        worker.start()
        show(context, state)
        _set_status(context, state.status_text())
        redraw(context)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        state, worker = active.state, active.worker
        if worker is None or state is None or active.operator is not self:
            self._stop_timer(context)  # the job was dropped (a file was opened, the add-on disabled)
            _set_status(context, None)
            return {"CANCELLED"}
        if event.type == "ESC" and event.value == "PRESS":
            request_cancel()
            show(context, state)
            _set_status(context, state.status_text())
            redraw(context)
            return {"RUNNING_MODAL"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        if worker.cancelled:
            state.cancel_requested = True
        drain(worker.queue, state)
        if state.state == APPLYING:
            self._release(context)
            return self._apply(context, state)
        if state.finished:
            self._release(context)
            return self._end(context, state, state.message, failed=state.state == FAILED)
        show(context, state)
        _set_status(context, state.status_text())
        redraw(context)
        return {"RUNNING_MODAL"}

    def cancel(self, context):
        """Blender ends the operator (file loaded, window closed, add-on disabled): stop the worker."""
        if active.operator is self and active.worker is not None:
            active.worker.cancel()
            if active.state is not None and active.state.active and active.state.state != APPLYING:
                active.state.handle(Stopped())
            self._release(context)

    # --- shared endings

    def _apply(self, context, state: JobState):
        try:
            message = self.job_apply(context, state.result)
        except self.job_errors as err:
            state.apply_failed(str(err))
            return self._end(context, state, state.message, failed=True)
        except Exception as err:  # a bug must not leave the job stuck in "writing keyframes"
            state.apply_failed(f"internal error while writing the result ({type(err).__name__}: {err})")
            return self._end(context, state, state.message, failed=True)
        state.applied(message)
        return self._end(context, state, message, failed=False)

    def _end(self, context, state: JobState, message: str, *, failed: bool):
        if state.active:
            state.fail(message)
        show(context, state)
        _set_status(context, None)
        redraw(context)
        try:
            self.job_finished(context, state)
        finally:
            if state.state == DONE:
                self.report({"INFO"}, message)
            elif state.state == CANCELLED:
                self.report({"WARNING"}, message)
            else:
                self.report({"ERROR"}, message)
        return {"CANCELLED"} if failed or state.state != DONE else {"FINISHED"}

    def _stop_timer(self, context) -> None:
        timer = getattr(self, "_timer", None)
        if timer is not None:
            context.window_manager.event_timer_remove(timer)
            self._timer = None

    def _release(self, context) -> None:
        self._stop_timer(context)
        if active.operator is self:
            active.operator = active.worker = None
        _set_status(context, None)
