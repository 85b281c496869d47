"""Without the model server's libraries (the operator image, a plain `pip install
modelrollout`), `serve`, `train` and `loadgen` refuse in one line naming what is
missing and where to get it; the operator itself never imports them."""

from __future__ import annotations

import subprocess
import sys
from importlib.machinery import ModuleSpec

import pytest

from modelrollout import cli
from modelrollout.cli import extras

pytestmark = pytest.mark.unit


@pytest.fixture
def without_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    def find_spec(name: str) -> ModuleSpec | None:
        return None if name in ("numpy", "sklearn") else ModuleSpec(name, None)

    monkeypatch.setattr(extras, "find_spec", find_spec)


@pytest.mark.parametrize(
    "argv",
    [
        ["serve"],
        ["train", "--out", "/nonexistent"],
        ["loadgen", "--url", "http://127.0.0.1:1"],
    ],
)
def test_model_server_commands_say_what_is_missing(
    without_numpy: None, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(argv) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"modelrollout {argv[0]}: the model server's dependencies")
    assert "missing: numpy, scikit-learn)" in error
    assert "Dockerfile target `modelserver`" in error
    assert "pip install 'modelrollout[modelserver]'" in error


def test_the_operator_starts_without_importing_ml_libraries() -> None:
    """What `modelrollout run` imports before Kopf takes over: the CLI's parser (every
    command registered), the run command, the handlers and Kopf. A fresh interpreter,
    since this session has imported numpy long ago."""
    probe = (
        "import sys\n"
        "import modelrollout.cli as cli\n"
        "cli.build_parser()\n"
        "import kopf, modelrollout.cli.run, modelrollout.handlers.operator\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(sys.argv[1:])))\n"
    )
    heavy = ["numpy", "scipy", "sklearn", "pandas", "skops", "palmerpenguins", "onnxruntime"]
    result = subprocess.run(
        [sys.executable, "-c", probe, *heavy], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_nothing_is_missing_in_the_development_environment() -> None:
    assert extras.missing_modelserver_dependencies() == []
    assert extras.modelserver_unavailable("serve") is None
