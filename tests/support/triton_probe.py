"""Read a generated project's Triton model repository as Triton would, and report it as JSON.

Run by a generated PyTorch project's own Python (its virtualenv has torch, onnx, onnxruntime and
``tritonclient[grpc]``; Trellis's has none of the last three), with ``MLFLOW_TRACKING_URI`` set:

    python triton_probe.py <package> <folder>

It downloads the champion, lays it out with the project's own ``publish.layout()``, parses
``config.pbtxt`` strictly as Triton's ``ModelConfig`` (an unknown field or a bad value is an
error), describes the ONNX graph's inputs and outputs, and runs the same hold-out rows through
the PyTorch model and through onnxruntime on the ONNX file. The caller asserts on the report.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any


def tensors(values: Any) -> list[dict[str, Any]]:
    """Name, ONNX element type and dims (a name for a free dimension) of graph tensors."""
    import onnx

    return [
        {
            "name": value.name,
            "data_type": onnx.TensorProto.DataType.Name(value.type.tensor_type.elem_type),
            "dims": [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim],
        }
        for value in values
    ]


def probe(package: str, folder: Path) -> dict[str, Any]:
    """Everything the caller checks about the champion's Triton model repository."""
    import numpy as np
    import onnx
    import onnxruntime
    from google.protobuf import json_format, text_format
    from mlflow.artifacts import download_artifacts
    from tritonclient.grpc import model_config_pb2

    model = importlib.import_module(f"{package}.model")
    project = importlib.import_module(f"{package}.project")
    publish = importlib.import_module(f"{package}.publish")
    registry = importlib.import_module(f"{package}.registry")
    data = importlib.import_module(f"{package}.data")

    champion = registry.version_for_alias(registry.connect(), registry.CHAMPION)
    uri = registry.model_uri(champion.version)
    downloaded = Path(download_artifacts(artifact_uri=uri, dst_path=str(folder / "download")))
    repository = publish.layout(downloaded, folder / "repository")

    config = text_format.Parse(
        (repository / project.MODEL_NAME / "config.pbtxt").read_text(encoding="utf-8"),
        model_config_pb2.ModelConfig(),
    )
    onnx_path = repository / project.MODEL_NAME / "1" / "model.onnx"
    graph = onnx.load(str(onnx_path)).graph

    _, holdout = data.split(data.load_dataset(), test_size=0.25, seed=42)
    rows = holdout.features.to_numpy(dtype=np.float32, copy=True)
    network = np.asarray(model.load(uri).predict(rows))
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (exported,) = session.run(["output"], {"input": rows})
    (single,) = session.run(["output"], {"input": rows[:1]})
    files = [path for path in repository.rglob("*") if path.is_file()]
    return {
        "files": sorted(str(path.relative_to(repository)) for path in files),
        "config": json_format.MessageToDict(config, preserving_proto_field_name=True),
        "onnx": {"inputs": tensors(graph.input), "outputs": tensors(graph.output)},
        "pytorch": network.tolist(),
        "onnxruntime": exported.tolist(),
        "onnxruntime_one_row": single.tolist(),
    }


if __name__ == "__main__":
    json.dump(probe(sys.argv[1], Path(sys.argv[2])), sys.stdout)
