#!/usr/bin/env python3
"""Per-convolution times of onnxruntime inside ResNet-50, beside `spatial-bench conv`.

Optional: `pip install onnxruntime onnx numpy`; nothing in the package or its tests needs it.
Runs the BN-folded ResNet-50 of scripts/onnx_reference.py with onnxruntime's profiler on, batch 1,
and prints, for each distinct convolution of `spatial-bench conv` (same layer names and counts),
onnxruntime's median time per call inside the network. With --ours FILE (the text output of
`spatial-bench conv --threads T`, run just before or after), it adds our time and the ratio.

    .build-native/release/spatial-bench conv --threads 1 > /tmp/conv.txt
    python3 scripts/onnx_layer_profile.py --threads 1 --ours /tmp/conv.txt
"""
import argparse
import collections
import json
import os
import re
import statistics
import sys
import tempfile

import numpy as np
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import onnx_reference  # noqa: E402  (the graph builder)


def layer_name(cin, cout, size, kernel, stride):
    """The `spatial-bench conv` row of a ResNet-50 convolution (input channels, outputs, input side,
    kernel, stride)."""
    stage = {64: 1, 128: 2, 256: 3, 512: 4}
    if kernel == 7:
        return "conv1 7×7/2"
    if kernel == 3:
        return f"layer{stage[cout]} conv2 3×3" + ("/2" if stride == 2 else "")
    if stride == 2:
        return f"layer{stage[cout // 4]} downsample /2"
    if cout == 4 * cin:
        return "layer1 conv3 + ds" if cin == 64 else f"layer{stage[cin]} conv3"
    if cin == 64 and cout == 64:
        return "layer1 conv1 first"
    if cin == 2 * cout:
        return f"layer{stage[cout]} conv1 first"
    return f"layer{stage[cout]} conv1"


def ours(path):
    """Layer → (count, ms) from a `spatial-bench conv` table."""
    rows = {}
    for line in open(path, encoding="utf-8"):
        m = re.match(r"(\S.*?)\s+(\d+)→(\d+)\s+\S+\s+\S+\s+(\d+)\s+\S+\s+\S+\s+(\S+)", line)
        if m and (line.startswith("conv1") or line.startswith("layer")):
            rows[m.group(1).strip()] = (int(m.group(4)), float(m.group(5)))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=25, help="profiled runs (the first 5 are dropped)")
    parser.add_argument("--ours", help="text output of `spatial-bench conv` for the same thread count")
    args = parser.parse_args()
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.enable_profiling = True
    options.profile_file_prefix = os.path.join(tempfile.mkdtemp(), "ort")
    session = ort.InferenceSession(onnx_reference.resnet50(False).SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).standard_normal((1, 3, 224, 224)).astype(np.float32)
    for _ in range(args.runs):
        session.run(None, {"input": x})
    events = json.load(open(session.end_profiling(), encoding="utf-8"))
    per_node = collections.defaultdict(list)
    shapes = {}
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["args"].get("op_name") == "Conv":
            node = e["name"][: -len("_kernel_time")]
            per_node[node].append(e["dur"] / 1000)
            inputs = [list(d.values())[0] for d in e["args"]["input_type_shape"]]
            outputs = [list(d.values())[0] for d in e["args"]["output_type_shape"]]
            shapes[node] = (inputs[0][1], inputs[1][0], inputs[0][2], inputs[1][2], inputs[0][2] // outputs[0][2])
    layers = collections.defaultdict(list)
    for node, times in per_node.items():
        layers[layer_name(*shapes[node])].append(statistics.median(times[5:]))
    mine = ours(args.ours) if args.ours else {}
    print(f"onnxruntime {ort.__version__}, {args.threads} thread(s), batch 1: median ms per call inside the network")
    header = f"{'layer':24s} {'×':>2s} {'onnxruntime':>11s}"
    if mine:
        header += f" {'ours':>8s} {'ours/ort':>8s} {'(ours − ort)·count':>19s}"
    print(header)
    total_ort = total_ours = 0.0
    for name, times in layers.items():
        t = statistics.mean(times)
        line = f"{name:24s} {len(times):2d} {t:11.3f}"
        total_ort += t * len(times)
        if name in mine:
            count, ms = mine[name]
            total_ours += ms * count
            line += f" {ms:8.3f} {ms / t:8.2f} {(ms - t) * count:+19.2f}"
        print(line)
    print(f"all convolutions: onnxruntime {total_ort:.1f} ms" + (f", ours {total_ours:.1f} ms" if mine else ""))


if __name__ == "__main__":
    main()
