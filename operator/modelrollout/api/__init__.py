"""The ModelDeployment API: pydantic models of spec, status and manual commands.

No I/O here (import-linter enforces it): the operator, the CLI and the tests all
read objects through these models, so they agree on every field and default.
"""

from modelrollout.api.command import Command, CommandAction, command_id_of, parse_command
from modelrollout.api.durations import DURATION_PATTERN, format_seconds, parse_duration
from modelrollout.api.errors import SpecError
from modelrollout.api.parsing import (
    dump_status,
    merge_patch,
    parse_object,
    parse_spec,
    parse_status,
    status_patch,
)
from modelrollout.api.revision import revision_of, spec_revision
from modelrollout.api.spec import (
    Analysis,
    BlueGreenStrategy,
    CanaryStep,
    CanaryStrategy,
    Metric,
    ModelDeploymentSpec,
    ModelRef,
    Notifications,
    PauseStep,
    Strategy,
    WebhookNotification,
)
from modelrollout.api.status import (
    BlueGreenStage,
    Condition,
    DriftRecord,
    HistoryEntry,
    Hold,
    LastCommand,
    MetricAnalysis,
    ModelDeploymentStatus,
    PendingScaleDown,
    Phase,
    ReadinessWait,
    RegistryStatus,
    RegistryVersion,
    RollbackRecord,
    Timer,
    Verdict,
)

__all__ = [
    "DURATION_PATTERN",
    "Analysis",
    "BlueGreenStage",
    "BlueGreenStrategy",
    "CanaryStep",
    "CanaryStrategy",
    "Command",
    "CommandAction",
    "Condition",
    "DriftRecord",
    "HistoryEntry",
    "Hold",
    "LastCommand",
    "Metric",
    "MetricAnalysis",
    "ModelDeploymentSpec",
    "ModelDeploymentStatus",
    "ModelRef",
    "Notifications",
    "PauseStep",
    "PendingScaleDown",
    "Phase",
    "ReadinessWait",
    "RegistryStatus",
    "RegistryVersion",
    "RollbackRecord",
    "SpecError",
    "Strategy",
    "Timer",
    "Verdict",
    "WebhookNotification",
    "command_id_of",
    "dump_status",
    "format_seconds",
    "merge_patch",
    "parse_command",
    "parse_duration",
    "parse_object",
    "parse_spec",
    "parse_status",
    "revision_of",
    "spec_revision",
    "status_patch",
]
