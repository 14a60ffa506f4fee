/// NumPy `.npy` files: read and write arrays of Float32.
///
/// Reads format versions 1.0, 2.0 and 3.0 with dtype `'<f4'` (float32), `'<f8'` (float64, rounded
/// to the nearest Float32; values beyond Float32's range become ±∞) or `'<f2'` (float16, exact), in
/// C order, any rank. Writes version 1.0 (2.0 when the header needs more than 65,535 bytes) with
/// dtype `'<f4'`, the header padded so that the data starts on a 64-byte boundary, as NumPy does.
///
/// Image batches (``Tensor``) are rank-4 arrays, `[N, C, H, W]` or `[N, H, W, C]` by layout; see
/// ``Tensor/init(_:layout:)`` for ranks 1–3.
///
/// Reading validates the whole file before it allocates the array: the magic string, the version,
/// the header length against the file size, the header dictionary (exactly the keys `descr`,
/// `fortran_order` and `shape`), the dtype, the order, and the data size implied by shape and dtype
/// against the bytes actually present (exactly equal: trailing bytes are an error too). Any problem
/// throws a ``FileFormatError`` naming the file.
public enum NPY {
    /// The six bytes every `.npy` file starts with.
    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // "\x93NUMPY"

    /// The element types the reader accepts, by their NumPy `descr`.
    enum DType: String {
        case float32 = "<f4"
        case float64 = "<f8"
        case float16 = "<f2"

        var size: Int {
            switch self {
            case .float32: return 4
            case .float64: return 8
            case .float16: return 2
            }
        }
    }

    // MARK: Reading

    /// The array in the `.npy` file at `path`.
    ///
    /// - Throws: ``FileFormatError`` naming `path` when the file is missing, unreadable or malformed,
    ///   or holds another dtype or Fortran order.
    public static func read(_ path: String) throws -> NDArray {
        try decode(BinaryFile.read(path), path: path)
    }

    /// The image batch in the `.npy` file at `path`, its array read as `layout` (rank 4:
    /// `[N, C, H, W]` for `.nchw`, `[N, H, W, C]` for `.nhwc`; ranks 1–3 as ``Tensor/init(_:layout:)``).
    ///
    /// - Throws: ``FileFormatError`` as ``read(_:)``; ``ShapeError`` naming the file and the shape
    ///   when the rank is 0 or above 4.
    public static func readTensor(_ path: String, layout: Layout = .nchw) throws -> Tensor {
        let array = try read(path)
        do {
            return try Tensor(array, layout: layout)
        } catch let error as ShapeError {
            throw ShapeError("\(path): \(error.message)")
        }
    }

    /// The array encoded in `bytes`, the contents of a `.npy` file; `path` only labels errors.
    ///
    /// - Throws: ``FileFormatError`` as ``read(_:)``.
    public static func decode(_ bytes: [UInt8], path: String = "<memory>") throws -> NDArray {
        try bytes.withUnsafeBytes { try decode($0, path: path) }
    }

    /// The array encoded in `bytes`; see `decode(_:path:)` for a byte array.
    public static func decode(_ bytes: UnsafeRawBufferPointer, path: String = "<memory>") throws -> NDArray {
        func fail(_ problem: FileFormatError.Problem) -> FileFormatError { FileFormatError(path: path, problem) }
        let fileSize = bytes.count

        // 1. Magic and version: 6 + 2 bytes, then a 2-byte (v1) or 4-byte (v2, v3) header length.
        let prefix = min(fileSize, magic.count)
        guard magic.prefix(prefix).elementsEqual(bytes.prefix(prefix)) else { throw fail(.badMagic) }
        guard fileSize >= 8 else { throw fail(.truncated(needed: 10, available: fileSize)) }
        let (major, minor) = (Int(bytes[6]), Int(bytes[7]))
        guard (major == 1 || major == 2 || major == 3) && minor == 0 else {
            throw fail(.unsupportedVersion(major: major, minor: minor))
        }
        let lengthSize = major == 1 ? 2 : 4
        guard fileSize >= 8 + lengthSize else { throw fail(.truncated(needed: 8 + lengthSize, available: fileSize)) }
        var headerLength = 0
        for i in 0..<lengthSize { headerLength |= Int(bytes[8 + i]) << (8 * i) }
        let headerStart = 8 + lengthSize
        guard headerLength <= fileSize - headerStart else {
            throw fail(.headerLengthPastEnd(declared: headerLength, available: fileSize - headerStart))
        }

        // 2. The header dictionary: dtype, order, shape.
        let header: NPYHeader
        do {
            header = try NPYHeader(parsing: UnsafeRawBufferPointer(rebasing: bytes[headerStart..<(headerStart + headerLength)]))
        } catch {
            throw fail(error.problem)
        }
        guard let dtype = DType(rawValue: header.descr) else { throw fail(.unsupportedDType(header.descr)) }
        guard !header.fortranOrder else { throw fail(.fortranOrder) }

        // 3. The data size the header implies, against the bytes present: checked before allocating.
        let dataStart = headerStart + headerLength
        let available = fileSize - dataStart
        guard let count = NDArray.elementCount(header.shape),
              case let (declared, false) = count.multipliedReportingOverflow(by: dtype.size)
        else { throw fail(.elementCountOverflow(name: nil, shape: header.shape)) }
        guard declared == available else {
            throw fail(.dataSizeMismatch(name: nil, shape: header.shape, declaredBytes: declared, availableBytes: available))
        }

        // 4. Convert.
        let data = UnsafeRawBufferPointer(rebasing: bytes[dataStart...])
        return NDArray(unchecked: header.shape, values: convert(data, count: count, dtype: dtype))
    }

    /// `count` little-endian elements of `dtype` from `data` (any alignment), as Float32.
    static func convert(_ data: UnsafeRawBufferPointer, count: Int, dtype: DType) -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { out, initialized in
            switch dtype {
            case .float32:
                for i in 0..<count {
                    out[i] = Float(bitPattern: UInt32(littleEndian: data.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
                }
            case .float64:
                for i in 0..<count {
                    out[i] = Float(Double(bitPattern: UInt64(littleEndian: data.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))))
                }
            case .float16:
                for i in 0..<count {
                    out[i] = ScalarConversion.float(fromHalfBits: UInt16(littleEndian: data.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
                }
            }
            initialized = count
        }
    }

    // MARK: Writing

    /// The `.npy` encoding of `array`: dtype `'<f4'`, C order, version 1.0 (2.0 for a header over
    /// 65,535 bytes), data aligned to 64 bytes.
    public static func encode(_ array: NDArray) -> [UInt8] {
        let dims = array.shape.map(String.init)
        let shapeText = dims.count == 1 ? "(\(dims[0]),)" : "(" + dims.joined(separator: ", ") + ")"
        var header = Array("{'descr': '<f4', 'fortran_order': False, 'shape': \(shapeText), }".utf8)
        var lengthSize = 2
        var total = magic.count + 2 + lengthSize + header.count + 1
        if total.roundedUp(to: 64) - 10 > Int(UInt16.max) {
            lengthSize = 4
            total = magic.count + 2 + lengthSize + header.count + 1
        }
        header += [UInt8](repeating: 0x20, count: total.roundedUp(to: 64) - total) + [0x0A]
        var bytes = magic + [lengthSize == 2 ? 1 : 2, 0]
        for i in 0..<lengthSize { bytes.append(UInt8(truncatingIfNeeded: header.count >> (8 * i))) }
        bytes += header
        appendLittleEndian(array.values, to: &bytes)
        return bytes
    }

    /// Writes `array` to `path` as ``encode(_:)`` does, atomically: the bytes go to a temporary
    /// file in the same folder that is renamed over `path` only when complete, so a failure leaves
    /// no file behind.
    ///
    /// - Throws: ``FileFormatError`` with ``FileFormatError/Problem/writeFailed(reason:)``.
    public static func write(_ array: NDArray, to path: String) throws {
        try BinaryFile.write(encode(array), to: path)
    }

    /// Writes `tensor` as a rank-4 array in its storage order: `[N, C, H, W]` for an NCHW tensor,
    /// `[N, H, W, C]` for an NHWC one. Atomic, as ``write(_:to:)-(NDArray,_)``.
    ///
    /// - Throws: ``FileFormatError`` with ``FileFormatError/Problem/writeFailed(reason:)``.
    public static func write(_ tensor: Tensor, to path: String) throws {
        try write(NDArray(tensor), to: path)
    }
}

/// Appends `values` as little-endian Float32 bytes: one bulk copy on a little-endian host.
func appendLittleEndian(_ values: [Float], to bytes: inout [UInt8]) {
    bytes.reserveCapacity(bytes.count + 4 * values.count)
    if 1.littleEndian == 1 {
        values.withUnsafeBytes { bytes.append(contentsOf: $0) }
    } else {
        for value in values {
            let bits = value.bitPattern.littleEndian
            withUnsafeBytes(of: bits) { bytes.append(contentsOf: $0) }
        }
    }
}

extension Int {
    /// The smallest multiple of `alignment` that is at least `self`.
    func roundedUp(to alignment: Int) -> Int { (self + alignment - 1) / alignment * alignment }
}
