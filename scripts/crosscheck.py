#!/usr/bin/env python3
"""Cross-check `spatial-attention classify` against onnxruntime on the same ResNet-50 and weights.

Optional (the Swift tests never need it): `pip install numpy onnx onnxruntime`.

For each variant (resnet50, resnet50+spsa, resnet50+se, resnet50+eca by default) it
  1. draws seeded weights under torchvision's state_dict names (docs/models.md: `conv1.weight`,
     `bn1.{weight,bias,running_mean,running_var,num_batches_tracked}`, `layer1.0.conv1.weight`,
     `layer1.0.downsample.{0,1}.*`, `fc.{weight,bias}`; SE `layer{s}.{i}.se.fc{1,2}.weight` [C/16, C],
     [C, C/16] without biases; ECA `layer{s}.{i}.eca.conv.weight` [1, 1, k], k = 3, 5, 5, 7 by stage),
  2. writes them as safetensors with a writer of its own (F32; `num_batches_tracked` as I64, as
     PyTorch exports it),
  3. builds the same network as an ONNX graph from those arrays, unfolded (Conv, BatchNormalization
     with eps 1e-5, ...), torchvision's Bottleneck v1.5 (stride on the 3×3 conv). SPSA sits after
     the 3×3 conv's BN, before its ReLU (002 Table 1 position #2), α = 2, 64 channels per head,
     written from the paper's code (001 A.1) with the degenerate rule (corr = 0 where a norm is 0);
     SE and ECA scale the output of the last BN before the residual addition,
  4. runs onnxruntime and `spatial-attention classify --model V --weights W --input X --logits Y`
     on the same seeded images, and compares the logits.

Comparison, per image: |ours − onnxruntime| ≤ 1e-4 · rms(onnxruntime logits of that image), for
every logit. A logit is a sum of 2048 products of O(1) features; its rounding error scales with the
size of the terms, which the row's RMS measures, not with the logit's own value (a logit near zero
carries the same absolute error as the others, so a per-element relative bound would be meaningless
there). The element-wise relative error is printed too.

    python3 scripts/crosscheck.py [--binary .build-native/release/spatial-attention] [--batch 2]
        [--size 224] [--variants resnet50,resnet50+spsa,resnet50+se] [--seed 1] [--keep DIR]
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
from collections import OrderedDict

import numpy as np

RTOL = 1e-4
BLOCKS = [3, 4, 6, 3]
WIDTHS = [64, 128, 256, 512]
ECA_KERNELS = [3, 5, 5, 7]
SE_REDUCTION = 16


# MARK: - Seeded torchvision-named weights

def state_dict(variant, seed):
    """OrderedDict name -> float32 array, torchvision's order, for `variant` of ResNet-50."""
    rng = np.random.default_rng(seed)
    spsa, se, eca = "+spsa" in variant, "+se" in variant, "+eca" in variant
    sd = OrderedDict()

    def conv(name, k, c, r, s):
        bound = np.sqrt(6.0 / (c * r * s))                          # Kaiming uniform (ReLU gain)
        sd[name + ".weight"] = rng.uniform(-bound, bound, (k, c, r, s)).astype(np.float32)

    def bn(name, c, scale=(0.5, 1.0)):
        sd[name + ".weight"] = rng.uniform(*scale, c).astype(np.float32)
        sd[name + ".bias"] = rng.uniform(-0.1, 0.1, c).astype(np.float32)
        sd[name + ".running_mean"] = rng.uniform(-0.1, 0.1, c).astype(np.float32)
        sd[name + ".running_var"] = rng.uniform(0.5, 1.5, c).astype(np.float32)
        sd[name + ".num_batches_tracked"] = np.array(1000, np.int64)

    conv("conv1", 64, 3, 7, 7)
    bn("bn1", 64)
    inplanes = 64
    for s, (blocks, width) in enumerate(zip(BLOCKS, WIDTHS)):
        out = width * 4
        for i in range(blocks):
            b = f"layer{s + 1}.{i}"
            conv(b + ".conv1", width, inplanes, 1, 1); bn(b + ".bn1", width)
            conv(b + ".conv2", width, width, 3, 3); bn(b + ".bn2", width)
            conv(b + ".conv3", out, width, 1, 1); bn(b + ".bn3", out, (0.1, 0.3))  # small: keeps the residual stream O(1)
            if se:
                hidden = out // SE_REDUCTION
                sd[b + ".se.fc1.weight"] = (rng.uniform(-1, 1, (hidden, out)) * np.sqrt(6.0 / out)).astype(np.float32)
                sd[b + ".se.fc2.weight"] = (rng.uniform(-1, 1, (out, hidden)) * np.sqrt(3.0 / hidden)).astype(np.float32)
            if eca:
                k = ECA_KERNELS[s]
                sd[b + ".eca.conv.weight"] = (rng.uniform(-1, 1, (1, 1, k)) * np.sqrt(6.0 / k)).astype(np.float32)
            if i == 0:
                conv(b + ".downsample.0", out, inplanes, 1, 1); bn(b + ".downsample.1", out)
            inplanes = out
    bound = 1 / np.sqrt(2048)
    sd["fc.weight"] = rng.uniform(-bound, bound, (1000, 2048)).astype(np.float32)
    sd["fc.bias"] = rng.uniform(-bound, bound, 1000).astype(np.float32)
    return sd


def write_safetensors(path, tensors):
    """The safetensors format, written directly: 8-byte length, JSON header, contiguous data."""
    dtypes = {np.dtype(np.float32): "F32", np.dtype(np.int64): "I64"}
    header, chunks, offset = OrderedDict(), [], 0
    header["__metadata__"] = {"format": "pt", "writer": "scripts/crosscheck.py"}
    for name, array in tensors.items():
        data = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dtypes[array.dtype], "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for chunk in chunks:
            f.write(chunk)


# MARK: - The same network as an ONNX graph

class Graph:
    def __init__(self, state):
        from onnx import helper, numpy_helper
        self.helper, self.numpy_helper = helper, numpy_helper
        self.state, self.nodes, self.initializers, self.count = state, [], [], 0

    def name(self, hint):
        self.count += 1
        return f"{hint}_{self.count}"

    def constant(self, array, hint="c"):
        name = self.name(hint)
        self.initializers.append(self.numpy_helper.from_array(np.asarray(array), name))
        return name

    def weight(self, key):
        return self.constant(self.state[key], key)

    def op(self, kind, inputs, **attributes):
        out = self.name(kind)
        self.nodes.append(self.helper.make_node(kind, inputs, [out], **attributes))
        return out

    def conv(self, x, key, stride=1, padding=0):
        return self.op("Conv", [x, self.weight(key + ".weight")], strides=[stride, stride], pads=[padding] * 4)

    def bn(self, x, key):
        return self.op("BatchNormalization", [x] + [self.weight(f"{key}.{p}") for p in
                       ("weight", "bias", "running_mean", "running_var")], epsilon=1e-5)

    def spsa(self, x, channels, alpha=2.0, channels_per_head=64):
        """001 A.1 per head, with corr = 0 where ‖xc‖·‖kc‖ = 0."""
        heads = channels // channels_per_head
        xh = self.op("Reshape", [x, self.constant(np.array([0, heads, channels_per_head, -1], np.int64))])  # N,G,cph,P
        k = self.op("ReduceMean", [xh, self.constant(np.array([3], np.int64))], keepdims=1)             # N,G,cph,1
        c_axis = self.constant(np.array([2], np.int64))
        kc = self.op("Sub", [k, self.op("ReduceMean", [k, c_axis], keepdims=1)])
        xc = self.op("Sub", [xh, self.op("ReduceMean", [xh, c_axis], keepdims=1)])
        kd = self.op("Sqrt", [self.op("ReduceSum", [self.op("Mul", [kc, kc]), c_axis], keepdims=1)])
        qd = self.op("Sqrt", [self.op("ReduceSum", [self.op("Mul", [xc, xc]), c_axis], keepdims=1)])
        num = self.op("ReduceSum", [self.op("Mul", [xc, kc]), c_axis], keepdims=1)
        den = self.op("Mul", [qd, kd])
        zero = self.constant(np.array(0, np.float32))
        safe = self.op("Where", [self.op("Equal", [den, zero]), self.constant(np.array(1, np.float32)), den])
        corr = self.op("Where", [self.op("Equal", [den, zero]), zero, self.op("Div", [num, safe])])
        a = self.op("Pow", [self.op("Sub", [self.constant(np.array(1, np.float32)), self.op("Sigmoid", [corr])]),
                            self.constant(np.array(alpha, np.float32))])
        out = self.op("Mul", [xh, a])
        return self.op("Reshape", [out, self.op("Shape", [x])])

    def se(self, x, key):
        z = self.op("Flatten", [self.op("GlobalAveragePool", [x])])
        h = self.op("Relu", [self.op("Gemm", [z, self.weight(key + ".fc1.weight")], transB=1)])
        s = self.op("Sigmoid", [self.op("Gemm", [h, self.weight(key + ".fc2.weight")], transB=1)])
        return self.op("Mul", [x, self.op("Unsqueeze", [s, self.constant(np.array([2, 3], np.int64))])])

    def eca(self, x, key):
        k = self.state[key + ".conv.weight"].shape[-1]
        z = self.op("Squeeze", [self.op("GlobalAveragePool", [x]), self.constant(np.array([3], np.int64))])  # N,C,1
        z = self.op("Transpose", [z], perm=[0, 2, 1])                                                         # N,1,C
        y = self.op("Conv", [z, self.weight(key + ".conv.weight")], pads=[(k - 1) // 2] * 2)
        s = self.op("Sigmoid", [self.op("Transpose", [y], perm=[0, 2, 1])])                                   # N,C,1
        return self.op("Mul", [x, self.op("Unsqueeze", [s, self.constant(np.array([3], np.int64))])])


def build_onnx(variant, state):
    import onnx
    from onnx import TensorProto, helper
    g = Graph(state)
    spsa, se, eca = "+spsa" in variant, "+se" in variant, "+eca" in variant
    x = g.op("Relu", [g.bn(g.conv("x", "conv1", 2, 3), "bn1")])
    x = g.op("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    for s, (blocks, width) in enumerate(zip(BLOCKS, WIDTHS)):
        for i in range(blocks):
            b = f"layer{s + 1}.{i}"
            stride = 2 if (i == 0 and s > 0) else 1
            t = g.op("Relu", [g.bn(g.conv(x, b + ".conv1"), b + ".bn1")])
            t = g.bn(g.conv(t, b + ".conv2", stride, 1), b + ".bn2")
            if spsa:
                t = g.spsa(t, width)
            t = g.bn(g.conv(g.op("Relu", [t]), b + ".conv3"), b + ".bn3")
            if se:
                t = g.se(t, b + ".se")
            if eca:
                t = g.eca(t, b + ".eca")
            shortcut = g.bn(g.conv(x, b + ".downsample.0", stride), b + ".downsample.1") if i == 0 else x
            x = g.op("Relu", [g.op("Add", [t, shortcut])])
    x = g.op("Flatten", [g.op("GlobalAveragePool", [x])])
    logits = g.op("Gemm", [x, g.weight("fc.weight"), g.weight("fc.bias")], transB=1)
    graph = helper.make_graph(g.nodes, variant, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])],
                              [helper.make_tensor_value_info(logits, TensorProto.FLOAT, ["N", 1000])], g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8  # what onnxruntime 1.14+ reads; newer onnx packages default to a newer IR
    onnx.checker.check_model(model)
    return model


def run_onnxruntime(model, x):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # the graph as written
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--binary", default=".build-native/release/spatial-attention")
    parser.add_argument("--variants", default="resnet50,resnet50+spsa,resnet50+se,resnet50+eca")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", help="write the weights, images and logits into this folder")
    args = parser.parse_args()
    if not os.access(args.binary, os.X_OK):
        sys.exit(f"no executable at {args.binary}: build it first (make build)")
    folder = args.keep or tempfile.mkdtemp(prefix="crosscheck-")
    os.makedirs(folder, exist_ok=True)
    images = np.random.default_rng(args.seed + 1000).standard_normal((args.batch, 3, args.size, args.size)).astype(np.float32)
    images_path = os.path.join(folder, "images.npy")
    np.save(images_path, images)
    failed = False
    for variant in args.variants.split(","):
        state = state_dict(variant, args.seed)
        weights = os.path.join(folder, variant.replace("+", "_") + ".safetensors")
        write_safetensors(weights, state)
        expected = run_onnxruntime(build_onnx(variant, state), images).astype(np.float64)
        logits_path = os.path.join(folder, variant.replace("+", "_") + "-logits.npy")
        command = [args.binary, "classify", "--model", variant, "--weights", weights, "--input", images_path,
                   "--logits", logits_path, "--top", "1"]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            print(f"{variant}: {' '.join(command)} exited {result.returncode}: {result.stderr.strip()}")
            failed = True
            continue
        actual = np.load(logits_path).reshape(expected.shape).astype(np.float64)
        scale = np.sqrt((expected ** 2).mean(axis=1, keepdims=True))
        err = np.abs(actual - expected)
        worst = float((err / scale).max())
        elementwise = float((err / np.maximum(np.abs(expected), 1e-30)).max())
        same_top1 = bool(np.array_equal(actual.argmax(1), expected.argmax(1)))
        ok = bool(np.all(err <= RTOL * scale))
        failed |= not ok
        print(f"{variant:18s} logits rms {scale.ravel().round(3).tolist()}  max |Δ|/rms {worst:.2e}  "
              f"max element-wise rel {elementwise:.2e}  same top-1 {same_top1}  {'OK' if ok else 'FAILED'}")
    print(f"files in {folder}" if args.keep else "")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
