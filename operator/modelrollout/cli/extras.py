"""What `serve`, `train`, `package` and `loadgen` need beyond the operator's dependencies.

The model server's libraries are the `modelserver` extra (`pip install
'modelrollout[modelserver]'`, the model-server image); the operator image and a
plain `pip install modelrollout` carry only what `run`, `status` and the control
commands need. Those four commands check first and say so in one line, instead
of failing deep inside an import.
"""

from __future__ import annotations

from importlib.util import find_spec

# Import name -> distribution name, for the message.
MODELSERVER_MODULES = {
    "numpy": "numpy",
    "sklearn": "scikit-learn",
    "skops": "skops",
    "palmerpenguins": "palmerpenguins",
    "pandas": "pandas",
    "aiohttp": "aiohttp",
}


def missing_modelserver_dependencies() -> list[str]:
    """Distributions of the `modelserver` extra that cannot be imported here."""
    return [dist for module, dist in MODELSERVER_MODULES.items() if find_spec(module) is None]


def modelserver_unavailable(command: str) -> str | None:
    """The error line for `modelrollout <command>` where the model server's
    dependencies are missing, or None when they are all installed."""
    missing = missing_modelserver_dependencies()
    if not missing:
        return None
    return (
        f"modelrollout {command}: the model server's dependencies are not installed "
        f"(missing: {', '.join(missing)}). This is an operator-only install (the "
        "operator image runs `modelrollout run` and the kubectl plugin commands): run "
        "model servers from the model-server image (Dockerfile target `modelserver`), "
        "or `pip install 'modelrollout[modelserver]'`."
    )
