"""Manual commands: what `kubectl modelrollout promote|abort|...` asks the operator.

The CLI writes the command as JSON into the `modelrollout.io/command` annotation
(never into spec, which GitOps owns). The operator records the id of the last
command it handled in status.lastCommand, so each command applies exactly once,
across operator restarts too.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from modelrollout.api.errors import SpecError, spec_error_from
from modelrollout.api.names import COMMAND_ANNOTATION

CommandAction = Literal["promote", "abort", "retry", "pause", "resume", "undo", "retrain"]


class Command(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )

    # Unique per invocation (the CLI uses a UUID); repeats of an id are ignored.
    id: str = Field(min_length=1, max_length=128)
    action: CommandAction
    # promote only: skip every remaining step.
    full: bool = False
    # undo only: the history entry number to serve; None means the one before the current.
    to_revision: int | None = Field(default=None, ge=1)
    # retrain only: the registry version whose training set to train on.
    dataset: str | None = Field(default=None, pattern=r"^[1-9][0-9]{0,9}$")

    @model_validator(mode="after")
    def _options_fit_action(self) -> Command:
        if self.full and self.action != "promote":
            raise ValueError("full applies to promote only")
        if self.to_revision is not None and self.action != "undo":
            raise ValueError("toRevision applies to undo only")
        if self.dataset is not None and self.action != "retrain":
            raise ValueError("dataset applies to retrain only")
        return self

    def to_annotation(self) -> str:
        """The annotation value the CLI writes."""
        # Without an unset dataset, so an operator from before `retrain` reads the others.
        omit = {"dataset"} if self.dataset is None else set()
        return json.dumps(self.model_dump(by_alias=True, exclude=omit), separators=(",", ":"))


def parse_command(text: str) -> Command:
    """Read the annotation value; SpecError names what is wrong with it."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise SpecError([f"{COMMAND_ANNOTATION}: not JSON ({error.msg})"]) from error
    try:
        return Command.model_validate(raw)
    except ValidationError as error:
        raise spec_error_from(error, COMMAND_ANNOTATION) from error


def command_id_of(text: str) -> str | None:
    """The id of a command annotation even when the rest of it is malformed.

    Lets the operator record (and so not re-report) a command it had to reject.
    """
    try:
        raw = json.loads(text)
    except json.JSONDecodeError:
        return None
    command_id = raw.get("id") if isinstance(raw, dict) else None
    return command_id if isinstance(command_id, str) and command_id else None
