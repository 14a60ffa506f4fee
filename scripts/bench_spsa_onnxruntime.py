#!/usr/bin/env python3
"""Time the paper's SPSA graph (001 A.1) in onnxruntime, one thread, beside our kernel in the same run.

Optional: needs `pip install onnxruntime onnx numpy`; the Swift tests never need it.

For each shape it builds the PyTorch code of 001 A.1 as an ONNX graph (multi-head by a reshape to
[N, heads, C/heads, H, W]), times it with onnxruntime on one intra-op thread, then runs
`spatial-bench spsa --json` for the same shape and layout on one thread, alternating the two `--rounds`
times, and prints each one's best median and the ratio.

    python3 scripts/bench_spsa_onnxruntime.py [--bench .build-native/release/spatial-bench]
"""
import argparse
import json
import subprocess
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

SHAPES = [((1, 64, 56, 56), 1), ((1, 128, 28, 28), 2), ((1, 256, 14, 14), 4), ((1, 512, 7, 7), 8),
          ((1, 128, 28, 28), 1)]


def spsa_graph(shape, heads, alpha=2.0):
    n, c, h, w = shape
    cph = c // heads
    const = lambda name, value, dtype=TensorProto.FLOAT: helper.make_tensor(name, dtype, [len(value)], value)
    nodes = [
        helper.make_node("Reshape", ["x", "heads_shape"], ["xh"]),                      # N,G,cph,H,W
        helper.make_node("ReduceMean", ["xh", "hw_axes"], ["k"], keepdims=1),           # k = x.mean([-1,-2])
        helper.make_node("ReduceMean", ["k", "c_axis"], ["k_mean"], keepdims=1),
        helper.make_node("Sub", ["k", "k_mean"], ["kc"]),
        helper.make_node("Mul", ["kc", "kc"], ["kc2"]),
        helper.make_node("ReduceSum", ["kc2", "c_axis"], ["kd2"], keepdims=1),
        helper.make_node("Sqrt", ["kd2"], ["kd"]),
        helper.make_node("ReduceMean", ["xh", "c_axis"], ["x_mean"], keepdims=1),      # x.mean(dim=1)
        helper.make_node("Sub", ["xh", "x_mean"], ["xc"]),
        helper.make_node("Mul", ["xc", "xc"], ["xc2"]),
        helper.make_node("ReduceSum", ["xc2", "c_axis"], ["qd2"], keepdims=1),
        helper.make_node("Sqrt", ["qd2"], ["qd"]),
        helper.make_node("Mul", ["xc", "kc"], ["prod"]),
        helper.make_node("ReduceSum", ["prod", "c_axis"], ["num"], keepdims=1),
        helper.make_node("Mul", ["qd", "kd"], ["den"]),
        helper.make_node("Div", ["num", "den"], ["corr"]),
        helper.make_node("Sigmoid", ["corr"], ["sig"]),
        helper.make_node("Sub", ["one", "sig"], ["rev"]),
        helper.make_node("Pow", ["rev", "alpha"], ["a"]),
        helper.make_node("Mul", ["xh", "a"], ["yh"]),
        helper.make_node("Reshape", ["yh", "x_shape"], ["y"]),
    ]
    inits = [
        const("heads_shape", [n, heads, cph, h, w], TensorProto.INT64),
        const("x_shape", [n, c, h, w], TensorProto.INT64),
        const("hw_axes", [3, 4], TensorProto.INT64),
        const("c_axis", [2], TensorProto.INT64),
        helper.make_tensor("one", TensorProto.FLOAT, [], [1.0]),
        helper.make_tensor("alpha", TensorProto.FLOAT, [], [alpha]),
    ]
    graph = helper.make_graph(nodes, "spsa", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9  # what onnxruntime 1.31 reads; the graph needs nothing newer
    return model


def time_ort(shape, heads, repeats=200):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(spsa_graph(shape, heads).SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    for _ in range(20):
        session.run(None, {"x": x})
    samples = []
    for _ in range(15):
        t0 = time.perf_counter()
        for _ in range(repeats // 15 + 1):
            session.run(None, {"x": x})
        samples.append((time.perf_counter() - t0) / (repeats // 15 + 1))
    return float(np.median(samples)) * 1e6


def time_ours(bench, shape, heads):
    out = subprocess.run([bench, "spsa", "--shape", ",".join(map(str, shape)), "--heads", str(heads),
                          "--layout", "nchw", "--threads", "1", "--json"], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)[0]["median_us"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bench", default=".build-native/release/spatial-bench")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"onnxruntime {ort.__version__}, 1 intra-op thread; ours: spatial-bench spsa, NCHW, 1 thread")
    print(f"{'shape':>20} {'heads':>5} {'onnxruntime µs':>15} {'ours µs':>9} {'speed-up':>9}")
    for shape, heads in SHAPES:
        ort_best, ours_best = float("inf"), float("inf")
        for _ in range(args.rounds):
            ort_best = min(ort_best, time_ort(shape, heads))
            ours_best = min(ours_best, time_ours(args.bench, shape, heads))
        print(f"{str(list(shape)):>20} {heads:>5} {ort_best:>15.1f} {ours_best:>9.1f} {ort_best / ours_best:>8.1f}×")


if __name__ == "__main__":
    main()
