import SpatialAttention

/// An input on which a reader broke one of its promises.
public struct FuzzViolation: Error, CustomStringConvertible {
    public let format: FuzzFormat
    public let message: String
    public let input: [UInt8]

    public var description: String {
        "\(format) reader: \(message) on a \(input.count)-byte input: \(input.prefix(96).map { String($0, radix: 16) }.joined(separator: " "))"
    }
}

/// One execution of a reader on `bytes`: returns nil when the file parsed, the problem when the
/// reader threw a ``FileFormatError``; throws a ``FuzzViolation`` when a promise is broken:
/// - the reader throws anything other than a `FileFormatError` naming the given path;
/// - a parsed array holds more elements than the input has bytes (an allocation sized by a
///   declaration instead of the data), or a count that is not the product of its shape;
/// - re-encoding what was parsed and reading it back gives different bits.
/// A crash or a hang is a violation too; the caller sees it as the process dying or stalling.
public func fuzzOne(_ bytes: [UInt8], format: FuzzFormat) throws(FuzzViolation) -> FileFormatError.Problem? {
    let path = "fuzz-input"
    func violation(_ message: String) -> FuzzViolation { FuzzViolation(format: format, message: message, input: bytes) }
    func check(_ arrays: [NDArray]) throws(FuzzViolation) {
        for array in arrays {
            guard array.values.count == array.shape.reduce(1, { $0 &* $1 }) else {
                throw violation("\(array.values.count) values for shape \(array.shape)")
            }
        }
        let total = arrays.reduce(0) { $0 + $1.values.count }
        guard total <= bytes.count else { throw violation("\(total) elements from \(bytes.count) bytes") }
    }
    do {
        switch format {
        case .npy:
            let array = try NPY.decode(bytes, path: path)
            try check([array])
            let again = try NPY.decode(NPY.encode(array), path: path)
            guard again.shape == array.shape, again.values.map(\.bitPattern) == array.values.map(\.bitPattern) else {
                throw violation("re-encoding changed the array")
            }
        case .safetensors:
            let file = try Safetensors(decoding: bytes, path: path)
            try check(Array(file.tensors.values))
            let again = try Safetensors(decoding: file.encoded(), path: path)
            guard again.metadata == file.metadata, again.names == file.names,
                  file.names.allSatisfy({ again.tensors[$0]!.values.map(\.bitPattern) == file.tensors[$0]!.values.map(\.bitPattern) })
            else { throw violation("re-encoding changed the tensors") }
        }
        return nil
    } catch let error as FuzzViolation {
        throw error
    } catch let error as FileFormatError {
        guard error.path == path else { throw violation("error names path '\(error.path)'") }
        return error.problem
    } catch {
        throw violation("threw \(type(of: error)): \(error)")
    }
}

/// What a mutation run did.
public struct FuzzSummary: CustomStringConvertible {
    public var format: FuzzFormat
    public var executions = 0
    public var parsed = 0
    /// Rejections by the first word of the problem's case name.
    public var rejections: [String: Int] = [:]
    public var violations: [FuzzViolation] = []

    public var description: String {
        let kinds = rejections.sorted { $0.value > $1.value }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        return "\(format): \(executions) executions, \(parsed) parsed, \(executions - parsed - violations.count) rejected (\(kinds)), \(violations.count) violations"
    }
}

/// Runs `count` mutated inputs of the seed corpus through the reader, seeded by `seed`.
/// Stops collecting violations after `maximumViolations`.
public func runMutations(format: FuzzFormat, count: Int, seed: UInt64, maximumViolations: Int = 10) -> FuzzSummary {
    let seeds = Corpus.seeds(format)
    var mutator = Mutator(seed: seed)
    var summary = FuzzSummary(format: format)
    var pool = seeds
    for i in 0..<count {
        // Mostly fresh seeds; sometimes a previous mutant, so that mutations stack deeper.
        let base = i % 4 == 3 ? pool[i % pool.count] : seeds[i % seeds.count]
        let input = mutator.mutate(base, format: format)
        summary.executions += 1
        do {
            if let problem = try fuzzOne(input, format: format) {
                summary.rejections[problem.caseName, default: 0] += 1
            } else {
                summary.parsed += 1
                if pool.count < 4096 { pool.append(input) }
            }
        } catch {
            if summary.violations.count < maximumViolations { summary.violations.append(error) }
        }
    }
    return summary
}

extension FileFormatError.Problem {
    /// The case's name, for histograms.
    public var caseName: String {
        switch self {
        case .fileNotFound: return "fileNotFound"
        case .notARegularFile: return "notARegularFile"
        case .readFailed: return "readFailed"
        case .writeFailed: return "writeFailed"
        case .truncated: return "truncated"
        case .badMagic: return "badMagic"
        case .unsupportedVersion: return "unsupportedVersion"
        case .headerLengthPastEnd: return "headerLengthPastEnd"
        case .headerTooLarge: return "headerTooLarge"
        case .badHeader: return "badHeader"
        case .unsupportedDType: return "unsupportedDType"
        case .fortranOrder: return "fortranOrder"
        case .elementCountOverflow: return "elementCountOverflow"
        case .dataSizeMismatch: return "dataSizeMismatch"
        case .offsetsOutOfRange: return "offsetsOutOfRange"
        case .overlappingOffsets: return "overlappingOffsets"
        case .uncoveredData: return "uncoveredData"
        case .duplicateName: return "duplicateName"
        }
    }
}
