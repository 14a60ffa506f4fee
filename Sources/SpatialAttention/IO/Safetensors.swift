/// A safetensors file: named arrays and string metadata (the format of Hugging Face `safetensors`,
/// in which PyTorch users export a `state_dict`).
///
/// Layout: an 8-byte little-endian header length `L`, `L` bytes of UTF-8 JSON
/// `{"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, …, "__metadata__": {..}}`,
/// then the data buffer; offsets are relative to the buffer's start, and the tensors must cover the
/// buffer exactly (no overlaps, no holes, no trailing bytes), as the format specifies.
///
/// Reading converts every tensor to Float32: `F32` as is; `F64` rounded to nearest; `F16` and
/// `BF16` exactly; integer dtypes (`I8`…`I64`, `U8`…`U64`) and `BOOL` to the nearest Float32 (exact
/// up to 2²⁴; torchvision's `num_batches_tracked` is `I64`). Other dtypes (`F8_E4M3`, complex, an
/// unknown name) are refused. Writing produces `F32` tensors, names in sorted order, header padded
/// with spaces to a multiple of 8 bytes.
///
/// Reading validates the whole header — length against the file size, JSON syntax, every entry's
/// fields, dtypes, shapes, byte counts and offsets against the buffer — before allocating any tensor,
/// and throws a ``FileFormatError`` naming the file and the first problem.
public struct Safetensors: Equatable, Sendable {
    /// The tensors by name.
    public var tensors: [String: NDArray]
    /// The `__metadata__` string map (empty when the file has none).
    public var metadata: [String: String]

    /// The largest header the reader accepts (the reference implementation's limit).
    public static let maximumHeaderLength = 100_000_000

    /// Creates a collection of named tensors to write.
    public init(tensors: [String: NDArray], metadata: [String: String] = [:]) {
        self.tensors = tensors
        self.metadata = metadata
    }

    /// The tensor names in sorted order.
    public var names: [String] { tensors.keys.sorted() }

    // MARK: Reading

    /// Reads the safetensors file at `path`.
    ///
    /// - Throws: ``FileFormatError`` naming `path` when the file is missing, unreadable or malformed.
    public init(contentsOf path: String) throws {
        try self.init(decoding: BinaryFile.read(path), path: path)
    }

    /// Decodes `bytes`, the contents of a safetensors file; `path` only labels errors.
    ///
    /// - Throws: ``FileFormatError`` as ``init(contentsOf:)``.
    public init(decoding bytes: [UInt8], path: String = "<memory>") throws {
        self = try bytes.withUnsafeBytes { try Safetensors.decode($0, path: path) }
    }

    private static func decode(_ bytes: UnsafeRawBufferPointer, path: String) throws -> Safetensors {
        do {
            return try decode(bytes)
        } catch {
            throw FileFormatError(path: path, error.problem)
        }
    }

    private static func decode(_ bytes: UnsafeRawBufferPointer) throws(HeaderProblem) -> Safetensors {
        func fail(_ problem: FileFormatError.Problem) -> HeaderProblem { HeaderProblem(problem: problem) }
        // 1. The header length, against the limit and the file size.
        guard bytes.count >= 8 else { throw fail(.truncated(needed: 8, available: bytes.count)) }
        let declared = UInt64(littleEndian: bytes.loadUnaligned(as: UInt64.self))
        let headerLength = Int(clamping: declared)
        guard headerLength <= maximumHeaderLength else {
            throw fail(.headerTooLarge(declared: headerLength, limit: maximumHeaderLength))
        }
        guard headerLength <= bytes.count - 8 else {
            throw fail(.headerLengthPastEnd(declared: headerLength, available: bytes.count - 8))
        }
        guard headerLength > 0, bytes[8] == UInt8(ascii: "{") else {
            throw .bad("the header does not start with '{'")
        }
        let buffer = UnsafeRawBufferPointer(rebasing: bytes[(8 + headerLength)...])

        // 2. The JSON, then every entry, in file order.
        let json = try JSONParser.parse(UnsafeRawBufferPointer(rebasing: bytes[8..<(8 + headerLength)]))
        guard case let .object(members) = json else { throw .bad("the header is not a JSON object") }
        var entries: [Entry] = []
        var seen = Set<String>()
        var metadata: [String: String] = [:]
        for (name, value) in members {
            guard seen.insert(name).inserted else { throw fail(.duplicateName(name)) }
            if name == "__metadata__" {
                metadata = try parseMetadata(value)
            } else {
                entries.append(try Entry(name: name, json: value, bufferLength: buffer.count))
            }
        }

        // 3. The offsets cover the buffer exactly: sorted, no overlap, no hole, nothing after.
        let ordered = entries.sorted { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        var covered = 0
        var last: String?
        for entry in ordered {
            if entry.begin < covered, let last { throw fail(.overlappingOffsets(first: last, second: entry.name)) }
            if entry.begin > covered { throw fail(.uncoveredData(begin: covered, end: entry.begin)) }
            if entry.end > covered || last == nil { covered = entry.end; last = entry.name }
        }
        if covered < buffer.count { throw fail(.uncoveredData(begin: covered, end: buffer.count)) }

        // 4. Only now allocate and convert.
        var tensors: [String: NDArray] = [:]
        tensors.reserveCapacity(entries.count)
        for entry in entries {
            let data = UnsafeRawBufferPointer(rebasing: buffer[entry.begin..<entry.end])
            tensors[entry.name] = NDArray(unchecked: entry.shape, values: entry.dtype.convert(data, count: entry.count))
        }
        return Safetensors(tensors: tensors, metadata: metadata)
    }

    private static func parseMetadata(_ json: JSON) throws(HeaderProblem) -> [String: String] {
        guard case let .object(members) = json else { throw .bad("__metadata__ is \(json.kind), not an object") }
        var metadata: [String: String] = [:]
        for (key, value) in members {
            guard case let .string(text) = value else {
                throw .bad("__metadata__ value for '\(key)' is \(value.kind), not a string")
            }
            guard metadata.updateValue(text, forKey: key) == nil else { throw .bad("__metadata__ key '\(key)' appears twice") }
        }
        return metadata
    }

    // MARK: Writing

    /// The safetensors encoding: `F32` tensors in sorted name order, contiguous from offset 0, the
    /// header padded with spaces to a multiple of 8 bytes.
    ///
    /// - Throws: ``FileFormatError`` (path `"<memory>"`) when a tensor is named `__metadata__`.
    public func encoded() throws -> [UInt8] {
        var fields: [String] = []
        if !metadata.isEmpty {
            let pairs = metadata.keys.sorted().map { "\(jsonQuoted($0)):\(jsonQuoted(metadata[$0]!))" }
            fields.append("\"__metadata__\":{\(pairs.joined(separator: ","))}")
        }
        var offset = 0
        for name in names {
            guard name != "__metadata__" else {
                throw FileFormatError(path: "<memory>", .badHeader(detail: "the tensor name '__metadata__' is reserved"))
            }
            let array = tensors[name]!
            let end = offset + 4 * array.values.count
            let shape = array.shape.map(String.init).joined(separator: ",")
            fields.append("\(jsonQuoted(name)):{\"dtype\":\"F32\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(end)]}")
            offset = end
        }
        var header = Array(("{" + fields.joined(separator: ",") + "}").utf8)
        header += [UInt8](repeating: 0x20, count: header.count.roundedUp(to: 8) - header.count)
        var bytes = littleEndianBytes(UInt64(header.count)) + header
        bytes.reserveCapacity(bytes.count + offset)
        for name in names { appendLittleEndian(tensors[name]!.values, to: &bytes) }
        return bytes
    }

    /// Writes the tensors to `path` as ``encoded()`` does, atomically (a temporary file in the same
    /// folder renamed into place), so a failure leaves no file behind.
    ///
    /// - Throws: ``FileFormatError`` naming `path`.
    public func write(to path: String) throws {
        let bytes: [UInt8]
        do {
            bytes = try encoded()
        } catch let error as FileFormatError {
            throw FileFormatError(path: path, error.problem)
        }
        try BinaryFile.write(bytes, to: path)
    }
}

private func littleEndianBytes<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
    (0..<(T.bitWidth / 8)).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
}
