extension Safetensors {
    /// The element types of the format, with their sizes and conversions to Float32.
    enum DType: String {
        case f64 = "F64", f32 = "F32", f16 = "F16", bf16 = "BF16"
        case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8"
        case u64 = "U64", u32 = "U32", u16 = "U16", u8 = "U8"
        case bool = "BOOL"

        var size: Int {
            switch self {
            case .f64, .i64, .u64: return 8
            case .f32, .i32, .u32: return 4
            case .f16, .bf16, .i16, .u16: return 2
            case .i8, .u8, .bool: return 1
            }
        }

        /// `count` little-endian elements from `data` (any alignment) as Float32.
        func convert(_ data: UnsafeRawBufferPointer, count: Int) -> [Float] {
            [Float](unsafeUninitializedCapacity: count) { out, initialized in
                func each<T: FixedWidthInteger>(_: T.Type, _ body: (T) -> Float) {
                    for i in 0..<count {
                        out[i] = body(T(littleEndian: data.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.size, as: T.self)))
                    }
                }
                switch self {
                case .f32: each(UInt32.self) { Float(bitPattern: $0) }
                case .f64: each(UInt64.self) { Float(Double(bitPattern: $0)) }
                case .f16: each(UInt16.self) { ScalarConversion.float(fromHalfBits: $0) }
                case .bf16: each(UInt16.self) { ScalarConversion.float(fromBFloatBits: $0) }
                case .i64: each(Int64.self) { Float($0) }
                case .i32: each(Int32.self) { Float($0) }
                case .i16: each(Int16.self) { Float($0) }
                case .i8: each(Int8.self) { Float($0) }
                case .u64: each(UInt64.self) { Float($0) }
                case .u32: each(UInt32.self) { Float($0) }
                case .u16: each(UInt16.self) { Float($0) }
                case .u8: each(UInt8.self) { Float($0) }
                case .bool: each(UInt8.self) { $0 == 0 ? 0 : 1 }
                }
                initialized = count
            }
        }
    }

    /// One validated header entry: dtype known, shape and byte count consistent with the offsets,
    /// offsets inside the data buffer.
    struct Entry {
        let name: String
        let dtype: DType
        let shape: [Int]
        let count: Int
        let begin: Int
        let end: Int

        init(name: String, json: JSON, bufferLength: Int) throws(HeaderProblem) {
            func bad(_ detail: String) -> HeaderProblem { .bad("tensor '\(name)': \(detail)") }
            guard case let .object(fields) = json else { throw bad("entry is \(json.kind), not an object") }
            var dtypeName: String?, shape: [Int]?, offsets: [Int]?
            for (key, value) in fields {
                switch key {
                case "dtype":
                    guard dtypeName == nil else { throw bad("field 'dtype' appears twice") }
                    guard case let .string(text) = value else { throw bad("dtype is \(value.kind), not a string") }
                    dtypeName = text
                case "shape":
                    guard shape == nil else { throw bad("field 'shape' appears twice") }
                    shape = try Entry.integers(value, field: "shape", name: name)
                case "data_offsets":
                    guard offsets == nil else { throw bad("field 'data_offsets' appears twice") }
                    offsets = try Entry.integers(value, field: "data_offsets", name: name)
                default:
                    throw bad("unexpected field '\(key)'")
                }
            }
            guard let dtypeName else { throw bad("missing field 'dtype'") }
            guard let shape else { throw bad("missing field 'shape'") }
            guard let offsets else { throw bad("missing field 'data_offsets'") }
            guard offsets.count == 2 else { throw bad("data_offsets has \(offsets.count) elements, not 2") }
            guard let dtype = DType(rawValue: dtypeName) else {
                throw HeaderProblem(problem: .unsupportedDType(dtypeName))
            }
            guard let count = NDArray.elementCount(shape),
                  case let (bytes, false) = count.multipliedReportingOverflow(by: dtype.size) else {
                throw HeaderProblem(problem: .elementCountOverflow(name: name, shape: shape))
            }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin <= end, end <= bufferLength else {
                throw HeaderProblem(problem: .offsetsOutOfRange(name: name, begin: begin, end: end, bufferLength: bufferLength))
            }
            guard end - begin == bytes else {
                throw HeaderProblem(problem: .dataSizeMismatch(name: name, shape: shape, declaredBytes: bytes, availableBytes: end - begin))
            }
            self.name = name
            self.dtype = dtype
            self.shape = shape
            self.count = count
            self.begin = begin
            self.end = end
        }

        /// A JSON array of non-negative integers.
        private static func integers(_ json: JSON, field: String, name: String) throws(HeaderProblem) -> [Int] {
            guard case let .array(elements) = json else { throw .bad("tensor '\(name)': \(field) is \(json.kind), not an array") }
            var values: [Int] = []
            for element in elements {
                guard case let .integer(value) = element, value >= 0 else {
                    throw .bad("tensor '\(name)': \(field) holds something other than a non-negative integer")
                }
                values.append(value)
            }
            return values
        }
    }
}
