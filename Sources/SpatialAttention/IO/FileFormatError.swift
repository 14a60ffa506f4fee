/// A file that cannot be read or written as the format it claims to be, with the file's path and
/// the problem.
///
/// Every reader of the package (``NPY``, ``Safetensors``) validates a file completely — prefix,
/// header, dtypes, shapes, offsets, and the byte counts they imply against the real file size —
/// before it allocates anything of a declared size, and reports the first problem it finds as a
/// `FileFormatError`. Readers never crash or hang on a malformed file.
public struct FileFormatError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The path of the file, as given to the reader or writer (`"<memory>"` for in-memory decoding).
    public let path: String
    /// What is wrong.
    public let problem: Problem

    /// Creates an error for `problem` in the file at `path`.
    public init(path: String, _ problem: Problem) {
        self.path = path
        self.problem = problem
    }

    /// `"path: problem"`, the message the CLI prints.
    public var description: String { "\(path): \(problem)" }

    /// The problems a reader or writer reports. Sizes are in bytes.
    public enum Problem: Equatable, Sendable, CustomStringConvertible {
        /// No file exists at the path.
        case fileNotFound
        /// The path names a directory, device or pipe rather than a regular file.
        case notARegularFile
        /// The operating system refused to open or read the file (`reason` is its message).
        case readFailed(reason: String)
        /// The operating system refused to create, write or rename the file.
        case writeFailed(reason: String)
        /// The file ends before its fixed-size prefix (magic, version, header length) does.
        case truncated(needed: Int, available: Int)
        /// The file does not start with the format's magic string.
        case badMagic
        /// An `.npy` format version other than 1.0, 2.0 or 3.0.
        case unsupportedVersion(major: Int, minor: Int)
        /// The header length field points past the end of the file.
        case headerLengthPastEnd(declared: Int, available: Int)
        /// A header longer than the reader accepts (safetensors: 100 MB, as the reference library).
        case headerTooLarge(declared: Int, limit: Int)
        /// The header is not the dictionary / JSON object the format requires; `detail` says where.
        case badHeader(detail: String)
        /// A dtype this package does not read (another type, big-endian, structured, unknown name).
        case unsupportedDType(String)
        /// An `.npy` array stored in Fortran (column-major) order.
        case fortranOrder
        /// The product of the shape (or its byte size) overflows `Int`.
        case elementCountOverflow(name: String?, shape: [Int])
        /// The shape and dtype imply `declaredBytes` of data but the file holds `availableBytes`
        /// (npy: the bytes after the header; safetensors: the tensor's offset range).
        case dataSizeMismatch(name: String?, shape: [Int], declaredBytes: Int, availableBytes: Int)
        /// A safetensors tensor's `data_offsets` are reversed or end past the data buffer.
        case offsetsOutOfRange(name: String, begin: Int, end: Int, bufferLength: Int)
        /// Two safetensors tensors share bytes.
        case overlappingOffsets(first: String, second: String)
        /// Bytes of the safetensors data buffer that no tensor covers (a hole, or trailing bytes).
        case uncoveredData(begin: Int, end: Int)
        /// The same tensor name appears twice in a safetensors header.
        case duplicateName(String)

        public var description: String {
            switch self {
            case .fileNotFound: return "no such file"
            case .notARegularFile: return "not a regular file"
            case let .readFailed(reason): return "cannot read: \(reason)"
            case let .writeFailed(reason): return "cannot write: \(reason)"
            case let .truncated(needed, available):
                return "truncated: the fixed prefix needs \(needed) bytes, the file has \(available)"
            case .badMagic: return "bad magic: not a file of this format"
            case let .unsupportedVersion(major, minor):
                return "unsupported format version \(major).\(minor) (supported: 1.0, 2.0, 3.0)"
            case let .headerLengthPastEnd(declared, available):
                return "header length \(declared) runs past the end of the file (\(available) bytes after the length field)"
            case let .headerTooLarge(declared, limit):
                return "header length \(declared) exceeds the limit of \(limit) bytes"
            case let .badHeader(detail): return "bad header: \(detail)"
            case let .unsupportedDType(dtype):
                let bigEndian = dtype.hasPrefix(">") ? " (big-endian)" : ""
                return "unsupported dtype '\(dtype)'\(bigEndian)"
            case .fortranOrder: return "Fortran-order (column-major) arrays are not supported; save with C order"
            case let .elementCountOverflow(name, shape):
                return "\(label(name))shape \(shape) has more elements or bytes than Int can count"
            case let .dataSizeMismatch(name, shape, declaredBytes, availableBytes):
                return "\(label(name))shape \(shape) needs \(declaredBytes) bytes of data, the file has \(availableBytes)"
            case let .offsetsOutOfRange(name, begin, end, bufferLength):
                return "tensor '\(name)': data_offsets [\(begin), \(end)] are outside the data buffer of \(bufferLength) bytes"
            case let .overlappingOffsets(first, second):
                return "tensors '\(first)' and '\(second)' have overlapping data_offsets"
            case let .uncoveredData(begin, end):
                return "data bytes [\(begin), \(end)) belong to no tensor"
            case let .duplicateName(name): return "tensor name '\(name)' appears twice"
            }
        }

        private func label(_ name: String?) -> String { name.map { "tensor '\($0)': " } ?? "" }
    }
}
