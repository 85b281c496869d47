"""Regenerates the Python modules of grpc_predict_v2.proto: `make grpc-stubs`.

The generated files are committed, so the server needs no code generator at run
time (grpcio-tools is a dev dependency); a unit test generates them afresh and
compares, so a changed .proto or grpcio-tools cannot go unnoticed.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROTO = HERE / "grpc_predict_v2.proto"
# The package path the proto is compiled under: the stubs import each other as
# `modelserver.grpc.grpc_predict_v2_pb2`.
PACKAGE = Path("modelserver") / "grpc"
GENERATED = ("grpc_predict_v2_pb2.py", "grpc_predict_v2_pb2.pyi", "grpc_predict_v2_pb2_grpc.py")


def generate(out: Path) -> list[Path]:
    """Write the generated modules into `out`; the paths written."""
    from grpc_tools import protoc  # dev dependency

    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        (root / PACKAGE).mkdir(parents=True)
        shutil.copy(PROTO, root / PACKAGE / PROTO.name)
        code = protoc.main(
            [
                "grpc_tools.protoc",
                f"-I{root}",
                f"--python_out={root}",
                f"--pyi_out={root}",
                f"--grpc_python_out={root}",
                str(PACKAGE / PROTO.name),
            ]
        )
        if code != 0:
            raise RuntimeError(f"protoc failed with status {code} on {PROTO}")
        out.mkdir(parents=True, exist_ok=True)
        for name in GENERATED:
            shutil.copy(root / PACKAGE / name, out / name)
    return [out / name for name in GENERATED]


def main() -> int:
    for path in generate(HERE):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
