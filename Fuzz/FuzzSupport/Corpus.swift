import SpatialAttention

/// The file formats whose parsers are fuzzed.
public enum FuzzFormat: String, CaseIterable, Sendable {
    case npy
    case safetensors
}

/// Valid seed files for the mutators: every dtype, header version and rank the readers accept,
/// built byte by byte here (not only by the writers under test).
public enum Corpus {
    public static func seeds(_ format: FuzzFormat) -> [[UInt8]] {
        switch format {
        case .npy: return npySeeds()
        case .safetensors: return safetensorsSeeds()
        }
    }

    static func npySeeds() -> [[UInt8]] {
        var seeds: [[UInt8]] = []
        let shapes: [[Int]] = [[], [3], [2, 3], [1, 2, 2, 2], [2, 1, 3, 1], [0, 4]]
        for shape in shapes {
            let count = shape.reduce(1, *)
            let values = (0..<count).map { Float($0) * 0.75 - 1 }
            seeds.append(NPY.encode(try! NDArray(shape: shape, values: values)))
            for (descr, size) in [("<f8", 8), ("<f2", 2)] {
                for version: UInt8 in [1, 2, 3] {
                    var data: [UInt8] = []
                    for v in values {
                        if size == 8 { data += bytes(Double(v).bitPattern) } else { data += bytes(UInt16(0x3C00 &+ UInt16(truncatingIfNeeded: Int(v * 4)))) }
                    }
                    seeds.append(npyFile(descr: descr, shape: shape, version: version, data: data))
                }
            }
        }
        return seeds
    }

    /// A `.npy` file with the header NumPy would write for `descr` and `shape`, padded to 64 bytes.
    public static func npyFile(descr: String, shape: [Int], version: UInt8 = 1, data: [UInt8]) -> [UInt8] {
        let dims = shape.map(String.init)
        let shapeText = dims.count == 1 ? "(\(dims[0]),)" : "(" + dims.joined(separator: ", ") + ")"
        var header = Array("{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shapeText), }".utf8)
        let prefix = version == 1 ? 10 : 12
        let total = prefix + header.count + 1
        header += [UInt8](repeating: 0x20, count: (total + 63) / 64 * 64 - total) + [0x0A]
        let length = version == 1 ? bytes(UInt16(header.count)) : bytes(UInt32(header.count))
        return [0x93] + Array("NUMPY".utf8) + [version, 0] + length + header + data
    }

    static func safetensorsSeeds() -> [[UInt8]] {
        var seeds: [[UInt8]] = []
        let weights = try! NDArray(shape: [2, 3], values: [1, -2, 3.5, 0, 1e-3, 7])
        let bias = try! NDArray(shape: [3], values: [0.5, 0.25, -1])
        seeds.append(try! Safetensors(tensors: ["fc.weight": weights, "fc.bias": bias], metadata: ["format": "pt"]).encoded())
        seeds.append(try! Safetensors(tensors: ["scalar": try! NDArray(shape: [], values: [2]), "empty": try! NDArray(shape: [0, 2], values: [])]).encoded())
        seeds.append(try! Safetensors(tensors: [:]).encoded())
        // Every dtype in one file, offsets in reverse name order.
        let entries: [(String, String, [Int], [UInt8])] = [
            ("a.f64", "F64", [2], bytes(Double(0.5).bitPattern) + bytes(Double(-3).bitPattern)),
            ("b.f16", "F16", [2, 1], bytes(UInt16(0x3C00)) + bytes(UInt16(0xC000))),
            ("c.bf16", "BF16", [1], bytes(UInt16(0x3FC0))),
            ("d.i64", "I64", [], bytes(Int64(12345))),
            ("e.u8", "U8", [3], [1, 2, 255]),
            ("f.bool", "BOOL", [2], [0, 1]),
            ("g.i32", "I32", [1, 1], bytes(Int32(-7))),
            ("h.f32", "F32", [2, 2], [1, 2, 3, 4].flatMap { bytes(Float($0).bitPattern) }),
        ]
        var fields: [String] = []
        var data: [UInt8] = []
        for (name, dtype, shape, payload) in entries.reversed() {
            let shapeText = shape.map(String.init).joined(separator: ",")
            fields.append("\"\(name)\":{\"dtype\":\"\(dtype)\",\"shape\":[\(shapeText)],\"data_offsets\":[\(data.count),\(data.count + payload.count)]}")
            data += payload
        }
        let header = Array(("{\"__metadata__\":{\"k\":\"v\"}," + fields.joined(separator: ",") + "}").utf8)
        seeds.append(bytes(UInt64(header.count)) + header + data)
        return seeds
    }

    static func bytes<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        (0..<(T.bitWidth / 8)).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
    }
}
