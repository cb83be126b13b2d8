"""An independent reference for a transformer exported to ONNX: a small ONNX graph interpreter.

Reads the graph and weights with Debian's python3-onnx (no onnxruntime), evaluates it node by
node with numpy in float64 following the ONNX operator definitions, and writes the first output
(e.g. last_hidden_state [batch, seq, d]) as float32 to a safetensors file. It shares nothing with
the Java side (DJL / ONNX Runtime) except the model file.

Usage: onnx_reference.py MODEL.onnx INPUT.safetensors OUTPUT.safetensors
  INPUT holds I64 tensors input_ids, attention_mask (and token_type_ids) [batch, seq].
"""
import math
import sys

import numpy as np
import onnx
from onnx import numpy_helper

sys.path.insert(0, __import__("os").path.dirname(__file__))
from safetensors_io import read_safetensors, write_safetensors  # noqa: E402

_ERF = np.vectorize(math.erf)


def attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def to_float(x):
    return x.astype(np.float64) if np.issubdtype(x.dtype, np.floating) else x


def run(model, feeds):
    env = {i.name: to_float(numpy_helper.to_array(i)) for i in model.graph.initializer}
    env.update(feeds)
    for node in model.graph.node:
        x = [env[n] if n else None for n in node.input]
        op = node.op_type
        if op == "Constant":
            out = to_float(numpy_helper.to_array(attr(node, "value")))
        elif op == "Add":
            out = x[0] + x[1]
        elif op == "Sub":
            out = x[0] - x[1]
        elif op == "Mul":
            out = x[0] * x[1]
        elif op == "Div":
            out = x[0] / x[1] if np.issubdtype(np.result_type(x[0], x[1]), np.floating) else x[0] // x[1]
        elif op == "Pow":
            out = np.power(x[0], x[1])
        elif op == "Sqrt":
            out = np.sqrt(x[0])
        elif op == "Erf":
            out = _ERF(x[0])
        elif op == "Tanh":
            out = np.tanh(x[0])
        elif op == "MatMul":
            out = np.matmul(x[0], x[1])
        elif op == "Gemm":
            a = x[0].T if attr(node, "transA", 0) else x[0]
            b = x[1].T if attr(node, "transB", 0) else x[1]
            out = attr(node, "alpha", 1.0) * (a @ b) + (attr(node, "beta", 1.0) * x[2] if len(x) > 2 else 0)
        elif op == "Softmax":
            axis = attr(node, "axis", -1)
            e = np.exp(x[0] - x[0].max(axis=axis, keepdims=True))
            out = e / e.sum(axis=axis, keepdims=True)
        elif op == "ReduceMean":
            axes = attr(node, "axes")
            if axes is None and len(x) > 1 and x[1] is not None:
                axes = list(x[1])
            out = x[0].mean(axis=tuple(axes), keepdims=bool(attr(node, "keepdims", 1)))
        elif op == "Gather":
            out = np.take(x[0], x[1].astype(np.int64), axis=attr(node, "axis", 0))
        elif op == "Unsqueeze":
            axes = attr(node, "axes")
            if axes is None:
                axes = list(x[1])
            out = x[0]
            for a in sorted(int(a) % (out.ndim + len(axes)) for a in axes):
                out = np.expand_dims(out, a)
        elif op == "Shape":
            out = np.array(x[0].shape, dtype=np.int64)
        elif op == "Concat":
            out = np.concatenate([np.atleast_1d(v) for v in x], axis=attr(node, "axis"))
        elif op == "Reshape":
            shape = [int(s) for s in x[1]]
            shape = [x[0].shape[i] if s == 0 else s for i, s in enumerate(shape)]
            out = x[0].reshape(shape)
        elif op == "Transpose":
            out = np.transpose(x[0], attr(node, "perm"))
        elif op == "Cast":
            to = attr(node, "to")
            out = x[0].astype(np.float64) if to in (1, 10, 11, 16) else x[0].astype(onnx.helper.tensor_dtype_to_np_dtype(to))
        elif op == "Slice":
            starts, ends = x[1], x[2]
            axes = x[3] if len(x) > 3 and x[3] is not None else range(len(starts))
            steps = x[4] if len(x) > 4 and x[4] is not None else [1] * len(starts)
            idx = [slice(None)] * x[0].ndim
            for s, e, a, st in zip(starts, ends, axes, steps):
                idx[int(a)] = slice(int(s), int(min(e, np.iinfo(np.int64).max)), int(st))
            out = x[0][tuple(idx)]
        else:
            raise NotImplementedError("ONNX op " + op + " is not in this reference interpreter")
        env[node.output[0]] = out
    return [env[o.name] for o in model.graph.output]


def main():
    model_path, input_path, output_path = sys.argv[1:4]
    model = onnx.load(model_path)
    tensors, _ = read_safetensors(input_path)
    wanted = {i.name for i in model.graph.input}
    feeds = {k: np.asarray(v, dtype=np.int64) for k, v in tensors.items() if k in wanted}
    outputs = run(model, feeds)
    hidden = next(o for o in outputs if o.ndim == 3)
    write_safetensors(output_path, [("hidden", hidden.astype(np.float32), "F32")])


if __name__ == "__main__":
    main()
