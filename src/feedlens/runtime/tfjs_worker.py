"""Converts one TF.js graph model to ONNX. Runs as a script inside the converter venv, never imported.

    <converter-venv>/bin/python tfjs_worker.py WORKDIR MODEL_NAME OPSET LOW HIGH [CHECK_SHAPE]

WORKDIR holds `MODEL_NAME.json` and its weight shards as shipped. The worker writes, in WORKDIR:
`patched/MODEL_NAME.json` (the attributes TensorFlow needs added), `MODEL_NAME.onnx` (tf2onnx), and
`check.npz` + `check.json`: a fixed input drawn uniformly from [LOW, HIGH] and the outputs TensorFlow
itself computes for it on the same TF.js graph, keyed by the ONNX graph's input and output names, so that
the caller can run the ONNX file with its own runtime and compare. It prints nothing on success.

Only the standard library, numpy, TensorFlow, tf2onnx and onnx are used: this file must not import feedlens
(the service's venv never has TensorFlow, and the converter venv never has feedlens).
"""

from __future__ import annotations

import base64
import copy
import importlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

# TF.js drops attributes that TensorFlow's op registry requires; tf2onnx builds TF node defs from the
# JSON, so without them it fails with "NodeDef missing attr".
_FUSED_OPS = ("_FusedConv2D", "_FusedMatMul", "FusedDepthwiseConv2dNative")
_ACTIVATIONS = {b"Relu": "Relu", b"Relu6": "Relu6", b"Elu": "Elu", b"Sigmoid": "Sigmoid", b"Tanh": "Tanh"}
_SEED = 20261206


def patch_model_json(model: dict[str, Any]) -> dict[str, Any]:
    """A copy of a TF.js model.json with `TArgs` on fused ops and `index_type` on TopKV2 where missing."""
    patched = copy.deepcopy(model)
    for node in _all_nodes(patched):
        attr = node.setdefault("attr", {})
        if node["op"] in _FUSED_OPS and "TArgs" not in attr:
            count = int(attr.get("num_args", {}).get("i", "0"))
            dtype = attr.get("T", {}).get("type", "DT_FLOAT")
            attr["TArgs"] = {"list": {"type": [dtype] * count}}
        elif node["op"] == "TopKV2" and "index_type" not in attr:
            attr["index_type"] = {"type": "DT_INT32"}
    return patched


def _all_nodes(model: dict[str, Any]) -> list[dict[str, Any]]:
    topology = model["modelTopology"]
    nodes: list[dict[str, Any]] = list(topology.get("node", []))
    for func in topology.get("library", {}).get("function", []):
        nodes.extend(func.get("nodeDef", []))
    return nodes


def _weights(model: dict[str, Any], folder: Path) -> dict[str, np.ndarray]:
    """Every weight of the model, dequantised (float16 shards become float32), by Const node name."""
    read_weight = importlib.import_module("tf2onnx.tfjs_utils").read_tfjs_weight
    out: dict[str, np.ndarray] = {}
    for group in model["weightsManifest"]:
        data = b"".join((folder / p).read_bytes() for p in group["paths"])
        offset = 0
        for weight in group["weights"]:
            name, array, size = read_weight(weight, data, offset)
            out[name] = array
            offset += size
    return out


def _unfused(node: dict[str, Any]) -> list[dict[str, Any]]:
    """TF.js's fused conv/matmul nodes as plain TensorFlow ops (conv or matmul, bias, activation), so the
    reference runs only TensorFlow's standard kernels. The last node keeps the fused node's name."""
    name, attr = node["name"], node["attr"]
    inputs = [i for i in node["input"] if not i.startswith("^")]
    fused = [base64.b64decode(s) for s in attr["fused_ops"]["list"].get("s", [])]
    if fused[:1] != [b"BiasAdd"] or len(fused) > 2:
        raise SystemExit(f"unsupported fused ops {fused} on {name}")
    dtype = {"T": attr["T"]}
    base_op = {"_FusedConv2D": "Conv2D", "_FusedMatMul": "MatMul"}.get(node["op"], "DepthwiseConv2dNative")
    keep = ["strides", "padding", "data_format", "dilations", "transpose_a", "transpose_b"]
    if base_op == "Conv2D":  # the depthwise op has no explicit paddings in TensorFlow
        keep.append("explicit_paddings")
    base_attr = {k: v for k, v in attr.items() if k in keep} | dtype
    nodes = [
        {"name": f"{name}/base", "op": base_op, "input": inputs[:2], "attr": base_attr},
        {"name": f"{name}/bias", "op": "BiasAdd", "input": [f"{name}/base", inputs[2]], "attr": dtype},
    ]
    activation = fused[1] if len(fused) == 2 else None
    if activation == b"Prelu":
        return nodes + _prelu_nodes(name, f"{name}/bias", inputs[3], dtype)
    if activation is not None and activation not in _ACTIVATIONS:
        raise SystemExit(f"unsupported fused activation {activation!r} on {name}")
    op = _ACTIVATIONS[activation] if activation is not None else "Identity"
    return [*nodes, {"name": name, "op": op, "input": [f"{name}/bias"], "attr": dtype}]


def _prelu_nodes(name: str, x: str, alpha: str, dtype: dict[str, Any]) -> list[dict[str, Any]]:
    """PReLU (TensorFlow has no such op) as relu(x) - alpha * relu(-x); the last node is `name`."""
    return [
        {"name": f"{name}/pos", "op": "Relu", "input": [x], "attr": dtype},
        {"name": f"{name}/neg", "op": "Neg", "input": [x], "attr": dtype},
        {"name": f"{name}/negrelu", "op": "Relu", "input": [f"{name}/neg"], "attr": dtype},
        {"name": f"{name}/scaled", "op": "Mul", "input": [alpha, f"{name}/negrelu"], "attr": dtype},
        {"name": name, "op": "Sub", "input": [f"{name}/pos", f"{name}/scaled"], "attr": dtype},
    ]


def reference_graph_def(model: dict[str, Any], weights: dict[str, np.ndarray]) -> Any:
    """The TF.js graph as a TensorFlow GraphDef with its weights, on standard TensorFlow ops only."""
    tf = importlib.import_module("tensorflow")
    json_format = importlib.import_module("google.protobuf.json_format")
    graph_def = tf.compat.v1.GraphDef()
    for node in model["modelTopology"]["node"]:
        if node["op"] in _FUSED_OPS:
            expanded = _unfused(node)
        elif node["op"] == "Prelu":
            dtype = {"T": node["attr"].get("T", {"type": "DT_FLOAT"})}
            expanded = _prelu_nodes(node["name"], node["input"][0], node["input"][1], dtype)
        else:
            expanded = [node]
        for item in expanded:
            node_def = json_format.ParseDict(item, tf.compat.v1.NodeDef())
            if item["op"] == "Const":
                dtype = tf.dtypes.as_dtype(node_def.attr["dtype"].type).as_numpy_dtype
                node_def.attr["value"].tensor.CopyFrom(
                    tf.make_tensor_proto(weights[item["name"]].astype(dtype))
                )
            graph_def.node.append(node_def)
    return graph_def


def _onnx_io(onnx_path: Path) -> tuple[list[tuple[str, str, list[int]]], list[str]]:
    """(name, elem type, shape with -1 for unknown) of each graph input, and the output names."""
    onnx = importlib.import_module("onnx")
    graph = onnx.load(str(onnx_path)).graph
    initialisers = {i.name for i in graph.initializer}
    inputs = []
    for value in graph.input:
        if value.name in initialisers:
            continue
        tensor_type = value.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor_type.shape.dim]
        inputs.append((value.name, onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type).name, dims))
    return inputs, [o.name for o in graph.output]


def _tf_tensor_name(onnx_name: str, model: dict[str, Any]) -> str:
    """The TensorFlow tensor behind an ONNX input/output name (tf2onnx renames to signature keys)."""
    signature = model.get("signature", {})
    for section in ("inputs", "outputs"):
        if onnx_name in signature.get(section, {}):
            name = str(signature[section][onnx_name]["name"])
            return name if ":" in name else f"{name}:0"
    return onnx_name if ":" in onnx_name else f"{onnx_name}:0"


def _fixed_input(dtype: str, shape: list[int], low: float, high: float) -> np.ndarray:
    rng = np.random.default_rng(_SEED)
    if dtype.startswith("int"):
        return rng.integers(int(low), int(high) + 1, shape).astype(dtype)
    return rng.uniform(low, high, shape).astype(dtype)


def check(workdir: Path, name: str, low: float, high: float, check_shape: list[int] | None) -> None:
    """Runs the TF.js graph in TensorFlow on a fixed input; writes check.npz and check.json."""
    tf = importlib.import_module("tensorflow")
    model = json.loads((workdir / "patched" / f"{name}.json").read_text())
    inputs, outputs = _onnx_io(workdir / f"{name}.onnx")
    if len(inputs) != 1:
        raise SystemExit(f"expected one graph input, found {[i[0] for i in inputs]}")
    in_name, in_dtype, in_shape = inputs[0]
    shape = check_shape or [1 if d < 0 else d for d in in_shape]
    sample = _fixed_input(in_dtype, shape, low, high)
    graph_def = reference_graph_def(model, _weights(model, workdir))
    with tf.Graph().as_default() as graph:
        tf.compat.v1.import_graph_def(graph_def, name="")
        with tf.compat.v1.Session(graph=graph) as session:
            fetches = [graph.get_tensor_by_name(_tf_tensor_name(o, model)) for o in outputs]
            feed = {graph.get_tensor_by_name(_tf_tensor_name(in_name, model)): sample}
            results = session.run(fetches, feed)
    arrays = {"input": sample} | {f"output{i}": np.asarray(r) for i, r in enumerate(results)}
    with zipfile.ZipFile(workdir / "check.npz", "w") as zf:  # the .npz layout np.load reads
        for key, array in arrays.items():
            with zf.open(f"{key}.npy", "w") as fh:
                np.lib.format.write_array(fh, array, allow_pickle=False)
    (workdir / "check.json").write_text(json.dumps({"input": in_name, "outputs": outputs}))


def main(argv: list[str]) -> None:
    workdir, name, opset, low, high = Path(argv[0]), argv[1], int(argv[2]), float(argv[3]), float(argv[4])
    check_shape = [int(d) for d in argv[5].split(",")] if len(argv) > 5 and argv[5] else None
    model = json.loads((workdir / f"{name}.json").read_text())
    patched_dir = workdir / "patched"
    patched_dir.mkdir(exist_ok=True)
    for group in model["weightsManifest"]:
        for shard in group["paths"]:
            (patched_dir / shard).symlink_to((workdir / shard).resolve())
    (patched_dir / f"{name}.json").write_text(json.dumps(patch_model_json(model)))
    # A path relative to the model's folder: tf2onnx writes "converted from <path>" into the file, which
    # should not carry the pull's temporary folder.
    cmd = [sys.executable, "-m", "tf2onnx.convert", "--tfjs", f"{name}.json"]
    cmd += ["--output", f"../{name}.onnx", "--opset", str(opset)]
    result = subprocess.run(cmd, cwd=patched_dir, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"tf2onnx failed:\n{result.stderr[-3000:]}")
    check(workdir, name, low, high, check_shape)


if __name__ == "__main__":
    main(sys.argv[1:])
