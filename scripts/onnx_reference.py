#!/usr/bin/env python3
"""Reference throughput of onnxruntime on ResNet-50 (and ResNet-50 + SPSA) with BN folded.

Optional: `pip install onnxruntime onnx numpy`; nothing in the package or its tests needs it.
Builds the torchvision ResNet-50 graph (v1.5: stride on the 3x3 convolution) with every BN folded
into its convolution's bias and seeded random weights, then times `InferenceSession.run` at
224x224 the way `spatial-bench tables` does (median of timed calls after a warm-up). With --spsa,
SPSA (alpha = 2, 64 channels per head, after the BN of each 3x3 convolution) is written in ONNX ops.

    python3 scripts/onnx_reference.py --threads 1,2 --batch 1 --spsa
"""
import argparse
import statistics
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper


class Graph:
    def __init__(self, seed):
        self.nodes, self.inits, self.count = [], [], 0
        self.rng = np.random.default_rng(seed)

    def name(self, prefix):
        self.count += 1
        return f"{prefix}{self.count}"

    def const(self, array, prefix="c"):
        n = self.name(prefix)
        self.inits.append(numpy_helper.from_array(np.asarray(array), n))
        return n

    def op(self, kind, inputs, **attrs):
        out = self.name(kind.lower())
        self.nodes.append(helper.make_node(kind, inputs, [out], **attrs))
        return out

    def conv(self, x, cin, cout, k, stride=1, relu=True):
        fan_in = cin * k * k
        w = (self.rng.standard_normal((cout, cin, k, k)) * np.sqrt(2.0 / fan_in)).astype(np.float32)
        b = (self.rng.uniform(-0.1, 0.1, cout)).astype(np.float32)
        y = self.op("Conv", [x, self.const(w, "w"), self.const(b, "b")], kernel_shape=[k, k],
                    strides=[stride, stride], pads=[k // 2] * 4)
        return self.op("Relu", [y]) if relu else y

    def spsa(self, x, channels, per_head=64):
        heads = channels // per_head
        split = self.const(np.array([0, heads, per_head, -1], dtype=np.int64), "s")
        back = self.const(np.array([0, channels, -1], dtype=np.int64), "s")
        shape = self.op("Shape", [x])
        q = self.op("Reshape", [x, split])                       # N, h, d, HW
        k = self.op("ReduceMean", [q, self.const(np.array([3], dtype=np.int64))], keepdims=1)
        kc = self.op("Sub", [k, self.op("ReduceMean", [k, self.const(np.array([2], dtype=np.int64))], keepdims=1)])
        xc = self.op("Sub", [q, self.op("ReduceMean", [q, self.const(np.array([2], dtype=np.int64))], keepdims=1)])
        axis = self.const(np.array([2], dtype=np.int64))
        num = self.op("ReduceSum", [self.op("Mul", [xc, kc]), axis], keepdims=1)
        qq = self.op("ReduceSum", [self.op("Mul", [xc, xc]), axis], keepdims=1)
        kk = self.op("ReduceSum", [self.op("Mul", [kc, kc]), axis], keepdims=1)
        corr = self.op("Div", [num, self.op("Sqrt", [self.op("Mul", [qq, kk])])])
        a = self.op("Sub", [self.const(np.array(1, dtype=np.float32)), self.op("Sigmoid", [corr])])
        a = self.op("Mul", [a, a])                                # alpha = 2
        y = self.op("Mul", [q, a])
        return self.op("Reshape", [self.op("Reshape", [y, back]), shape])


def resnet50(spsa, seed=0):
    g = Graph(seed)
    x = "input"
    y = g.conv(x, 3, 64, 7, 2)
    y = g.op("MaxPool", [y], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    cin = 64
    for stage, blocks in enumerate([3, 4, 6, 3]):
        width = 64 << stage
        for i in range(blocks):
            stride = 2 if stage > 0 and i == 0 else 1
            t = g.conv(y, cin, width, 1)
            t = g.conv(t, width, width, 3, stride, relu=not spsa)
            if spsa:
                t = g.op("Relu", [g.spsa(t, width)])
            t = g.conv(t, width, 4 * width, 1, relu=False)
            shortcut = g.conv(y, cin, 4 * width, 1, stride, relu=False) if i == 0 else y
            y = g.op("Relu", [g.op("Add", [t, shortcut])])
            cin = 4 * width
    y = g.op("Flatten", [g.op("GlobalAveragePool", [y])])
    fc = (g.rng.uniform(-1, 1, (1000, 2048)) / np.sqrt(2048)).astype(np.float32)
    y = g.op("Gemm", [y, g.const(fc, "w"), g.const(np.zeros(1000, np.float32), "b")], transB=1)
    graph = helper.make_graph(g.nodes, "resnet50", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 224, 224])],
                              [helper.make_tensor_value_info(y, TensorProto.FLOAT, ["N", 1000])], g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--batch", default="1")
    parser.add_argument("--repetitions", type=int, default=15)
    parser.add_argument("--spsa", action="store_true", help="also time ResNet-50 + SPSA")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="cpu: the process's CPU time (all threads), as SPATIAL_BENCH_CLOCK=cpu; for 1 thread")
    args = parser.parse_args()
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    print(f"onnxruntime {ort.__version__}, {args.clock} clock")
    variants = [("resnet50", False)] + ([("resnet50+spsa", True)] if args.spsa else [])
    models = {name: resnet50(spsa).SerializeToString() for name, spsa in variants}
    for threads in map(int, args.threads.split(",")):
        for batch in map(int, args.batch.split(",")):
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            sessions = {name: ort.InferenceSession(blob, options, providers=["CPUExecutionProvider"])
                        for name, blob in models.items()}
            x = np.random.default_rng(1).standard_normal((batch, 3, 224, 224)).astype(np.float32)
            for s in sessions.values():
                for _ in range(3):
                    s.run(None, {"input": x})
            samples = {name: [] for name in sessions}
            for _ in range(args.repetitions):  # alternating rounds, as spatial-bench tables
                for name, s in sessions.items():
                    start = clock()
                    s.run(None, {"input": x})
                    samples[name].append(clock() - start)
            for name in sessions:
                median = statistics.median(samples[name])
                print(f"{name:15s} threads {threads} batch {batch}: {batch / median:7.2f} img/s ({median * 1e3:.1f} ms)")


if __name__ == "__main__":
    main()
