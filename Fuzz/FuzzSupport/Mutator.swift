import SpatialAttention

/// Seeded structure-aware mutations of a file. Half the time the file is split into its fixed
/// prefix, header and data, the header and data are edited separately (numbers, dtype names,
/// quotes and brackets, copied names, swapped offsets; data truncated or extended) and the parts are
/// put back together with a correct length field, so that the edits reach the deep checks; the other
/// half, raw edits (bit flips, byte edits, truncation, deletion, insertion, duplication, length-field
/// rewrites) hit the whole file. The same seed gives the same stream.
public struct Mutator {
    private var generator: SeededGenerator

    public init(seed: UInt64) { generator = SeededGenerator(seed: seed) }

    /// Numbers that sit on the readers' boundaries.
    static let numbers = ["0", "1", "-1", "4294967296", "1099511627776", "9223372036854775807",
                          "9223372036854775808", "99999999999999999999", "2305843009213693952", "1.5", "1e3"]
    static let npyTokens = ["'<f4'", "'>f4'", "'<f8'", "'<f2'", "'<i4'", "'|u1'", "True", "False", "()", "(3)",
                            "(1,)", "[('a', '<f4')]", "'shape'", "'descr'", "'fortran_order'", "{", "}", ",", "'", "\""]
    static let jsonTokens = ["\"F32\"", "\"F16\"", "\"BF16\"", "\"F64\"", "\"I64\"", "\"BOOL\"", "\"F8_E4M3\"", "\"X\"",
                             "[]", "[0,4]", "[4,0]", "null", "true", "{", "}", "[", "]", ",", ":", "\"", "\\u0000",
                             "\"__metadata__\"", "\"dtype\"", "\"shape\"", "\"data_offsets\""]
    static let interestingBytes: [UInt8] = [0, 1, 0x7F, 0x80, 0xFF, 0x20, 0x0A, 0x22, 0x27, 0x28, 0x29, 0x2C,
                                            0x30, 0x39, 0x5B, 0x5D, 0x7B, 0x7D, 0x5C]

    /// The tokens the header edits splice in (also a libFuzzer dictionary).
    public static func tokens(_ format: FuzzFormat) -> [String] {
        (format == .npy ? npyTokens : jsonTokens) + numbers
    }

    private mutating func below(_ n: Int) -> Int { n <= 1 ? 0 : Int(generator.next() % UInt64(n)) }

    /// One to four mutations of `input`.
    public mutating func mutate(_ input: [UInt8], format: FuzzFormat) -> [UInt8] {
        if below(2) == 0, var parts = FileParts(input, format: format) {
            for _ in 0...below(4) {
                if below(4) == 0 { editData(&parts.data) } else { editHeader(&parts.header, format: format) }
            }
            return parts.joined()
        }
        var bytes = input
        for _ in 0...below(4) { editRaw(&bytes, format: format) }
        return bytes
    }

    // MARK: Edits

    private mutating func editHeader(_ header: inout [UInt8], format: FuzzFormat) {
        switch below(10) {
        case 8: substituteToken(&header, format: format)
        case 9: shiftPair(&header)
        case 0: replaceNumber(&header)
        case 1, 2:
            let tokens = format == .npy ? Self.npyTokens : Self.jsonTokens
            let token = Array(tokens[below(tokens.count)].utf8)
            let start = below(header.count + 1)
            header.replaceSubrange(start..<(start + min(header.count - start, below(token.count + 2))), with: token)
        case 3: swapNumbers(&header)
        case 4: copyString(&header)
        case 5: editByte(&header, in: 0..<header.count)
        case 6 where !header.isEmpty:
            let start = below(header.count)
            header.removeSubrange(start..<min(header.count, start + 1 + below(8)))
        default:
            guard !header.isEmpty else { return }
            let start = below(header.count), length = 1 + below(min(32, header.count - start))
            header.insert(contentsOf: header[start..<(start + length)], at: below(header.count + 1))
        }
    }

    private mutating func editData(_ data: inout [UInt8]) {
        switch below(4) {
        case 0: data.removeLast(below(min(data.count, 9) + 1))
        case 1: data += (0..<(1 + below(8))).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
        case 2 where !data.isEmpty: data.remove(at: below(data.count))
        default: editByte(&data, in: 0..<data.count)
        }
    }

    private mutating func editRaw(_ bytes: inout [UInt8], format: FuzzFormat) {
        switch below(8) {
        case 0, 1: editByte(&bytes, in: 0..<bytes.count)
        case 2: bytes.removeLast(below(bytes.count + 1))
        case 3 where !bytes.isEmpty:
            let start = below(bytes.count)
            bytes.removeSubrange(start..<min(bytes.count, start + 1 + below(16)))
        case 4:
            let start = below(bytes.count + 1)
            bytes.insert(contentsOf: (0..<(1 + below(8))).map { _ in UInt8(truncatingIfNeeded: generator.next()) }, at: start)
        case 5: rewriteLength(&bytes, format: format)
        case 6: replaceNumber(&bytes)
        default: bytes += (0..<(1 + below(32))).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
        }
    }

    /// A bit flip, an interesting byte or a random byte at a random position of `range`.
    private mutating func editByte(_ bytes: inout [UInt8], in range: Range<Int>) {
        guard !range.isEmpty else { return }
        let i = range.lowerBound + below(range.count)
        switch below(3) {
        case 0: bytes[i] ^= UInt8(1) << UInt8(below(8))
        case 1: bytes[i] = Self.interestingBytes[below(Self.interestingBytes.count)]
        default: bytes[i] = UInt8(truncatingIfNeeded: generator.next())
        }
    }

    private mutating func rewriteLength(_ bytes: inout [UInt8], format: FuzzFormat) {
        let (start, width) = format == .npy ? (8, bytes.count > 7 && bytes[6] != 1 ? 4 : 2) : (0, 8)
        guard bytes.count >= start + width else { return }
        let choices: [UInt64] = [0, 1, 0xFFFF, 0xFFFF_FFFF, .max, 1 << 40, UInt64(bytes.count),
                                 UInt64(bytes.count - start - width), generator.next() % 256]
        var value = choices[below(choices.count)]
        if below(3) == 0 { value = value &+ UInt64(below(16)) &- 8 }
        for i in 0..<width { bytes[start + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
    }

    private func runs(_ bytes: [UInt8], where belongs: (UInt8) -> Bool) -> [Range<Int>] {
        var runs: [Range<Int>] = []
        var i = 0
        while i < bytes.count {
            if belongs(bytes[i]) {
                let start = i
                while i < bytes.count && belongs(bytes[i]) { i += 1 }
                runs.append(start..<i)
            } else {
                i += 1
            }
        }
        return runs
    }

    private static func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }

    /// Replaces a digit run with a boundary number, or nudges it by ±4.
    private mutating func replaceNumber(_ bytes: inout [UInt8]) {
        let digits = runs(bytes, where: Self.isDigit)
        guard !digits.isEmpty else { return }
        let run = digits[below(digits.count)]
        let replacement: String
        if below(3) == 0, let value = Int(String(decoding: bytes[run], as: UTF8.self)) {
            replacement = String(value &+ below(9) &- 4)
        } else {
            replacement = Self.numbers[below(Self.numbers.count)]
        }
        bytes.replaceSubrange(run, with: Array(replacement.utf8))
    }

    /// Swaps two digit runs (offsets of two tensors: overlaps and holes; two dimensions).
    private mutating func swapNumbers(_ bytes: inout [UInt8]) {
        let digits = runs(bytes, where: Self.isDigit)
        guard digits.count >= 2 else { return }
        var (a, b) = (digits[below(digits.count)], digits[below(digits.count)])
        if a.lowerBound > b.lowerBound { swap(&a, &b) }
        guard a.upperBound <= b.lowerBound else { return }
        let (first, second) = (Array(bytes[a]), Array(bytes[b]))
        bytes.replaceSubrange(b, with: first)
        bytes.replaceSubrange(a, with: second)
    }

    /// Replaces one occurrence of a known token with another token.
    private mutating func substituteToken(_ bytes: inout [UInt8], format: FuzzFormat) {
        let tokens = (format == .npy ? Self.npyTokens : Self.jsonTokens).map { Array($0.utf8) }.filter { $0.count > 1 }
        var found: [(Range<Int>, Int)] = []
        for start in bytes.indices {
            for (t, token) in tokens.enumerated() where start + token.count <= bytes.count {
                if bytes[start..<(start + token.count)].elementsEqual(token) { found.append((start..<(start + token.count), t)) }
            }
        }
        guard !found.isEmpty else { return }
        let (range, _) = found[below(found.count)]
        bytes.replaceSubrange(range, with: tokens[below(tokens.count)])
    }

    /// Adds the same delta to both numbers of a `[a,b]` or `(a, b)` pair: moves a tensor's data
    /// window without changing its size (overlaps, holes), or scales a shape.
    private mutating func shiftPair(_ bytes: inout [UInt8]) {
        let digits = runs(bytes, where: Self.isDigit)
        let pairs = zip(digits, digits.dropFirst()).filter { a, b in
            bytes[a.upperBound..<b.lowerBound].allSatisfy { $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: " ") }
        }
        guard !pairs.isEmpty else { return }
        let (a, b) = pairs[below(pairs.count)]
        guard let x = Int(String(decoding: bytes[a], as: UTF8.self)), let y = Int(String(decoding: bytes[b], as: UTF8.self)) else { return }
        let delta = [-8, -4, -2, -1, 1, 2, 4, 8][below(8)]
        bytes.replaceSubrange(b, with: Array(String(max(0, y &+ delta)).utf8))
        bytes.replaceSubrange(a, with: Array(String(max(0, x &+ delta)).utf8))
    }

    /// Copies one quoted string over another (duplicate names and keys, swapped dtypes).
    private mutating func copyString(_ bytes: inout [UInt8]) {
        let quote = UInt8(ascii: "\""), apostrophe = UInt8(ascii: "'")
        let quotes = bytes.indices.filter { bytes[$0] == quote || bytes[$0] == apostrophe }
        let strings = stride(from: 0, to: quotes.count - 1, by: 2).map { quotes[$0]..<(quotes[$0 + 1] + 1) }
        guard strings.count >= 2 else { return }
        let (source, target) = (strings[below(strings.count)], strings[below(strings.count)])
        bytes.replaceSubrange(target, with: Array(bytes[source]))
    }
}

/// A file split into the fixed prefix (magic, version), header and data, when its length field
/// fits the file; ``joined()`` writes a correct length field for the current header.
struct FileParts {
    let format: FuzzFormat
    var prefix: [UInt8]
    var header: [UInt8]
    var data: [UInt8]

    init?(_ bytes: [UInt8], format: FuzzFormat) {
        self.format = format
        switch format {
        case .npy:
            guard bytes.count >= 10 else { return nil }
            let width = bytes[6] == 1 ? 2 : 4
            guard bytes.count >= 8 + width else { return nil }
            let length = (0..<width).reduce(0) { $0 | Int(bytes[8 + $1]) << (8 * $1) }
            guard length <= bytes.count - 8 - width else { return nil }
            prefix = Array(bytes[0..<8])
            header = Array(bytes[(8 + width)..<(8 + width + length)])
            data = Array(bytes[(8 + width + length)...])
        case .safetensors:
            guard bytes.count >= 8 else { return nil }
            let length = (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[$1]) << (8 * UInt64($1)) }
            guard length <= UInt64(bytes.count - 8) else { return nil }
            prefix = []
            header = Array(bytes[8..<(8 + Int(length))])
            data = Array(bytes[(8 + Int(length))...])
        }
    }

    func joined() -> [UInt8] {
        switch format {
        case .npy:
            let width = prefix[6] == 1 ? 2 : 4
            let length = (0..<width).map { UInt8(truncatingIfNeeded: header.count >> (8 * $0)) }
            return prefix + length + header + data
        case .safetensors:
            return (0..<8).map { UInt8(truncatingIfNeeded: UInt64(header.count) >> (8 * UInt64($0))) } + header + data
        }
    }
}
