"""The one error type the API layer raises, with a message a user can act on."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pydantic import ValidationError


class SpecError(ValueError):
    """A ModelDeployment (or a manual command) that cannot be used as written.

    `problems` lists each problem as "<field path>: <what to fix>"; `str()` joins them.
    """

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        super().__init__("; ".join(self.problems))


def field_path(prefix: str, loc: Sequence[int | str]) -> str:
    """`spec.strategy.canary.steps[1].setWeight` from a pydantic error location."""
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path = f"{path}.{part}" if path else str(part)
    return path


def spec_error_from(error: ValidationError, prefix: str) -> SpecError:
    """Turn pydantic's report into one SpecError naming each field."""
    problems = []
    for item in error.errors(include_url=False):
        # Model-level validators report at the model's own location; drop
        # pydantic's internal "Value error, " prefix so the message reads plainly.
        message = str(item["msg"]).removeprefix("Value error, ")
        problems.append(f"{field_path(prefix, item['loc'])}: {message}")
    return SpecError(problems)
