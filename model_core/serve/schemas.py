"""What the API accepts and answers, as pydantic models whose limits are checked before the model runs.

A request outside these limits never reaches the model: FastAPI answers it with a 4xx naming the
field (see `app.py`). The limits keep one request from holding the model for long or filling
memory; the body size itself is capped before parsing (`MAX_BODY_BYTES`).
"""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from ..settings import (
    EDIT_RESIDUAL_GUIDANCE,
    FPS,
    FRAMES_PER_TOKEN,
    MAX_FRAMES,
    MAX_GUIDANCE,
    MAX_LONG_SECONDS,
    MAX_TEMPERATURE,
    MIN_SECONDS,
    MIN_TEMPERATURE,
    SERVER_MAX_CONSTRAINTS,
    SERVER_MAX_PROMPT_CHARS,
    SERVER_MAX_PROMPTS,
    SERVER_MAX_SAMPLES,
    SERVER_MAX_SEED,
    SERVER_MAX_SEGMENTS,
    SERVER_MAX_STEPS,
    SERVER_MAX_VARIATIONS,
    GenerationSettings,
)

MAX_BODY_BYTES = 2 * 1024 * 1024  # a 196-frame edit window of features is about 0.7 MB of JSON

DEFAULTS = GenerationSettings()


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("empty: describe the motion in words")
    return text


Prompt = Annotated[str, Field(min_length=1, max_length=SERVER_MAX_PROMPT_CHARS), AfterValidator(_not_blank)]
Seconds = Annotated[float, Field(ge=MIN_SECONDS, le=MAX_LONG_SECONDS, allow_inf_nan=False)]
Number = Annotated[float, Field(allow_inf_nan=False)]
Constraints = Annotated[list[dict[str, Any]] | None, Field(
    None, max_length=SERVER_MAX_CONSTRAINTS, description="directed generation: targets as in --constraints FILE.json")]


def _temperature(default: float) -> Any:
    return Field(default, ge=MIN_TEMPERATURE, le=MAX_TEMPERATURE, allow_inf_nan=False)


def _guidance(default: float) -> Any:
    return Field(default, ge=-MAX_GUIDANCE, le=MAX_GUIDANCE, allow_inf_nan=False)


class _Settings(BaseModel):
    """The sampling settings every model call takes (the command line's flags, same defaults): the fields
    of `GenerationSettings`, with the seed and what to answer."""
    model_config = ConfigDict(extra="forbid")

    steps: int = Field(DEFAULTS.steps, ge=1, le=SERVER_MAX_STEPS, description="remasking iterations")
    guidance: float = _guidance(DEFAULTS.guidance)
    residual_guidance: float = _guidance(DEFAULTS.residual_guidance)
    temperature: float = _temperature(DEFAULTS.temperature)
    residual_temperature: float = _temperature(DEFAULTS.residual_temperature)
    topk: float = Field(DEFAULTS.topk, ge=0, lt=1, description="keep the top (1 - topk) share of logits")
    seed: int = Field(0, ge=0, le=SERVER_MAX_SEED)
    include_features: bool = Field(True, description="also answer the 263-d features (larger answers)")

    def settings(self) -> GenerationSettings:
        return GenerationSettings.from_mapping(vars(self))


class SequenceRow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: Prompt
    seconds: Seconds


class GenerateRequest(_Settings):
    """Text to motion: `prompt` (or `prompts`, or a `sequence` of prompt rows), as `generate` takes it."""

    prompt: Prompt | None = None
    prompts: list[Prompt] | None = Field(None, min_length=1, max_length=SERVER_MAX_PROMPTS)
    sequence: list[SequenceRow] | None = Field(None, min_length=1, max_length=SERVER_MAX_SEGMENTS,
                                               description="one continuous motion through each row in turn")
    seconds: Seconds | list[Seconds] | None = Field(
        None, description=f"length ({FPS} fps, whole {FRAMES_PER_TOKEN}-frame tokens; past {MAX_FRAMES / FPS} s made "
        "window by "
        "window); one value, one per prompt, or none for the length estimator")
    variations: int = Field(1, ge=1, le=SERVER_MAX_VARIATIONS, description="variation k uses seed + k")
    constraints: Constraints = None

    @model_validator(mode="after")
    def _one_source(self) -> GenerateRequest:
        given = [name for name in ("prompt", "prompts", "sequence") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("prompt: give exactly one of prompt, prompts or sequence"
                             + (f" (got {', '.join(given)})" if given else ""))
        if self.sequence is not None and self.seconds is not None:
            raise ValueError("seconds: a sequence gives the seconds of each row, not seconds")
        if isinstance(self.seconds, list) and len(self.seconds) != len(self.prompt_list):
            raise ValueError(f"seconds: {len(self.seconds)} lengths for {len(self.prompt_list)} prompts")
        if len(self.prompt_list) * self.variations > SERVER_MAX_SAMPLES:
            raise ValueError(f"variations: prompts x variations is at most {SERVER_MAX_SAMPLES}, got "
                             f"{len(self.prompt_list)} x {self.variations}")
        if self.sequence is not None and sum(row.seconds for row in self.sequence) > MAX_LONG_SECONDS:
            raise ValueError(f"sequence: at most {MAX_LONG_SECONDS:.0f} s in all")
        return self

    @property
    def prompt_list(self) -> list[str]:
        if self.sequence is not None:
            return [" / ".join(row.prompt for row in self.sequence)]
        return [self.prompt] if self.prompt is not None else list(self.prompts or [])

    def seconds_list(self) -> list[float | None]:
        count = len(self.prompt_list)
        return list(self.seconds) if isinstance(self.seconds, list) else [self.seconds] * count


class EditRequest(_Settings):
    """Regenerate a range of a motion (`start_frame`..`end_frame`, inclusive) or extend it
    (`frames_before` or `frames_after`). The motion comes as `features` (frames x 263) or as
    `joints` (frames x 22 x 3, metres, Y up, 20 fps; they become features as the official
    `process_file` makes them, one frame fewer)."""

    residual_guidance: float = _guidance(EDIT_RESIDUAL_GUIDANCE)
    prompt: Prompt
    features: list[list[Number]] | None = Field(None, min_length=1, max_length=MAX_FRAMES)
    joints: list[list[list[Number]]] | None = Field(None, min_length=2, max_length=MAX_FRAMES + 1)
    start_frame: int | None = Field(None, ge=0, lt=MAX_FRAMES)
    end_frame: int | None = Field(None, ge=0, lt=MAX_FRAMES)
    frames_before: int | None = Field(None, ge=1, lt=MAX_FRAMES)
    frames_after: int | None = Field(None, ge=1, lt=MAX_FRAMES)
    constraints: Constraints = Field(None, description="a range edit's targets, on regenerated frames of the motion "
                                     "sent and in its space (as --constraints FILE.json)")

    @model_validator(mode="after")
    def _one_motion_one_edit(self) -> EditRequest:
        if (self.features is None) == (self.joints is None):
            raise ValueError("features: send the motion as features or as joints (exactly one)")
        is_range = self.start_frame is not None or self.end_frame is not None
        sides = [name for name in ("frames_before", "frames_after") if getattr(self, name) is not None]
        if is_range == bool(sides) or len(sides) > 1:
            raise ValueError("start_frame: give a range (start_frame and end_frame) or one of frames_before, "
                             "frames_after")
        if is_range and (self.start_frame is None or self.end_frame is None):
            raise ValueError("end_frame: a range needs both start_frame and end_frame")
        if is_range and self.end_frame < self.start_frame:
            raise ValueError(f"end_frame: {self.end_frame} is before start_frame {self.start_frame}")
        if sides and self.constraints is not None:
            raise ValueError("constraints: an extension takes none; direct a range edit (start_frame, end_frame)")
        return self


class MotionAnswer(BaseModel):
    """Motions padded to the longest; `lengths` gives each one's frames."""
    joints: list[list[list[list[float]]]] = Field(description="motions x frames x joints x 3, metres, Y up")
    features: list[list[list[float]]] | None = Field(None, description="motions x frames x 263")
    lengths: list[int]
    fps: int
    seams: list[int] = Field(default_factory=list, description="frames where a long motion's windows meet")


class EditAnswer(MotionAnswer):
    """The edited window; `frame_start`..`frame_end` (exclusive) are the frames that were regenerated."""
    frame_start: int
    frame_end: int


FIELDS = frozenset(name for model in (GenerateRequest, EditRequest, SequenceRow) for name in model.model_fields)


class ErrorAnswer(BaseModel):
    error: str
    field: str | None = None


class HealthAnswer(BaseModel):
    status: str
    models: dict[str, str]
    device: str
    version: str
    engine: str = Field(description="uvicorn (one process) or ray")
    replica: str = Field(description="host:pid of the process that answered")
    limits: dict[str, float]
    stats: dict[str, int] = Field(description="since start, in this process: requests, model_calls, cancelled, "
                                  "failed")
