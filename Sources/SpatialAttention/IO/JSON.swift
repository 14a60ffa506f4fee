/// A JSON value, as the safetensors header parser sees it. Objects keep their members in file order
/// (duplicates included) so that the reader can report a repeated name.
enum JSON {
    case object([(key: String, value: JSON)])
    case array([JSON])
    case string(String)
    /// An integer literal (no fraction or exponent) that fits in `Int`.
    case integer(Int)
    /// Any other number.
    case number(Double)
    case bool(Bool)
    case null

    /// What the value is, for messages ("a string", "an object").
    var kind: String {
        switch self {
        case .object: return "an object"
        case .array: return "an array"
        case .string: return "a string"
        case .integer, .number: return "a number"
        case .bool: return "a boolean"
        case .null: return "null"
        }
    }
}

/// A strict RFC 8259 parser over bytes: UTF-8 checked, no comments, no trailing commas, nesting
/// limited to ``maximumDepth`` so that no input can exhaust the stack. Errors name the byte offset.
struct JSONParser {
    static let maximumDepth = 64

    private let bytes: UnsafeRawBufferPointer
    private var offset = 0

    /// Parses `bytes` as one JSON value, optionally surrounded by whitespace.
    static func parse(_ bytes: UnsafeRawBufferPointer) throws(HeaderProblem) -> JSON {
        var parser = JSONParser(bytes: bytes)
        parser.skipSpace()
        let value = try parser.value(depth: 0)
        parser.skipSpace()
        guard parser.offset == bytes.count else { throw parser.error("unexpected bytes after the JSON value") }
        return value
    }

    private init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    private func error(_ what: String) -> HeaderProblem { .bad("JSON: \(what) at byte \(offset)") }

    private func peek() -> UInt8? { offset < bytes.count ? bytes[offset] : nil }

    private mutating func skipSpace() {
        while let b = peek(), b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D { offset += 1 }
    }

    private mutating func expect(_ byte: UInt8) throws(HeaderProblem) {
        guard peek() == byte else { throw error("expected '\(Character(Unicode.Scalar(byte)))'") }
        offset += 1
    }

    private mutating func value(depth: Int) throws(HeaderProblem) -> JSON {
        guard depth < Self.maximumDepth else { throw error("nesting deeper than \(Self.maximumDepth)") }
        guard let byte = peek() else { throw error("unexpected end of the header") }
        switch byte {
        case UInt8(ascii: "{"): return try object(depth: depth)
        case UInt8(ascii: "["): return try array(depth: depth)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
        default: throw error("unexpected character 0x\(String(byte, radix: 16))")
        }
    }

    private mutating func object(depth: Int) throws(HeaderProblem) -> JSON {
        offset += 1
        var members: [(key: String, value: JSON)] = []
        skipSpace()
        if peek() == UInt8(ascii: "}") { offset += 1; return .object(members) }
        while true {
            skipSpace()
            guard peek() == UInt8(ascii: "\"") else { throw error("expected a member name") }
            let key = try string()
            skipSpace()
            try expect(UInt8(ascii: ":"))
            skipSpace()
            members.append((key, try value(depth: depth + 1)))
            skipSpace()
            if peek() == UInt8(ascii: ",") { offset += 1; continue }
            try expect(UInt8(ascii: "}"))
            return .object(members)
        }
    }

    private mutating func array(depth: Int) throws(HeaderProblem) -> JSON {
        offset += 1
        var elements: [JSON] = []
        skipSpace()
        if peek() == UInt8(ascii: "]") { offset += 1; return .array(elements) }
        while true {
            skipSpace()
            elements.append(try value(depth: depth + 1))
            skipSpace()
            if peek() == UInt8(ascii: ",") { offset += 1; continue }
            try expect(UInt8(ascii: "]"))
            return .array(elements)
        }
    }

    private mutating func literal(_ word: StaticString) throws(HeaderProblem) {
        let count = word.utf8CodeUnitCount
        let matches = offset + count <= bytes.count
            && (0..<count).allSatisfy { bytes[offset + $0] == word.utf8Start[$0] }
        guard matches else { throw error("invalid literal") }
        offset += count
    }

    private mutating func number() throws(HeaderProblem) -> JSON {
        let start = offset
        var integral = true
        if peek() == UInt8(ascii: "-") { offset += 1 }
        guard let first = peek(), first >= 0x30 && first <= 0x39 else { throw error("expected a digit") }
        offset += 1
        if first != 0x30 { skipDigits() }
        if peek() == UInt8(ascii: ".") {
            integral = false
            offset += 1
            guard try skipRequiredDigits() else { throw error("expected a digit after '.'") }
        }
        if let e = peek(), e == UInt8(ascii: "e") || e == UInt8(ascii: "E") {
            integral = false
            offset += 1
            if let sign = peek(), sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") { offset += 1 }
            guard try skipRequiredDigits() else { throw error("expected a digit in the exponent") }
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<offset]), as: UTF8.self)
        if integral, let value = Int(text) { return .integer(value) }
        return .number(Double(text) ?? .nan)
    }

    private mutating func skipDigits() {
        while let b = peek(), b >= 0x30 && b <= 0x39 { offset += 1 }
    }

    private mutating func skipRequiredDigits() throws(HeaderProblem) -> Bool {
        let start = offset
        skipDigits()
        return offset > start
    }

    /// A string literal: escapes decoded, surrogate pairs joined, UTF-8 validated.
    private mutating func string() throws(HeaderProblem) -> String {
        let start = offset
        offset += 1
        var utf8: [UInt8] = []
        while true {
            guard let byte = peek() else { throw error("unterminated string") }
            offset += 1
            switch byte {
            case UInt8(ascii: "\""):
                guard let text = String(validating: utf8, as: UTF8.self) else {
                    throw .bad("JSON: string starting at byte \(start) is not valid UTF-8")
                }
                return text
            case UInt8(ascii: "\\"):
                try escape(into: &utf8)
            case 0..<0x20:
                throw error("control character in a string")
            default:
                utf8.append(byte)
            }
        }
    }

    private mutating func escape(into utf8: inout [UInt8]) throws(HeaderProblem) {
        guard let byte = peek() else { throw error("unterminated escape") }
        offset += 1
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): utf8.append(byte)
        case UInt8(ascii: "b"): utf8.append(0x08)
        case UInt8(ascii: "f"): utf8.append(0x0C)
        case UInt8(ascii: "n"): utf8.append(0x0A)
        case UInt8(ascii: "r"): utf8.append(0x0D)
        case UInt8(ascii: "t"): utf8.append(0x09)
        case UInt8(ascii: "u"):
            var scalar = try hex4()
            if (0xD800..<0xDC00).contains(scalar) {
                guard peek() == UInt8(ascii: "\\") else { throw error("unpaired surrogate") }
                offset += 1
                guard peek() == UInt8(ascii: "u") else { throw error("unpaired surrogate") }
                offset += 1
                let low = try hex4()
                guard (0xDC00..<0xE000).contains(low) else { throw error("unpaired surrogate") }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            } else if (0xDC00..<0xE000).contains(scalar) {
                throw error("unpaired surrogate")
            }
            guard let unicode = Unicode.Scalar(scalar) else { throw error("invalid \\u escape") }
            utf8.append(contentsOf: Array(String(Character(unicode)).utf8))
        default:
            throw error("invalid escape")
        }
    }

    private mutating func hex4() throws(HeaderProblem) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let b = peek() else { throw error("unterminated \\u escape") }
            let digit: UInt8
            switch b {
            case 0x30...0x39: digit = b - 0x30
            case 0x41...0x46: digit = b - 0x41 + 10
            case 0x61...0x66: digit = b - 0x61 + 10
            default: throw error("invalid \\u escape")
            }
            value = value << 4 | UInt32(digit)
            offset += 1
        }
        return value
    }
}

/// JSON text for `string`: quoted, with `"`, `\` and control characters escaped.
func jsonQuoted(_ string: String) -> String {
    var out = "\""
    for scalar in string.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case let s where s.value < 0x20:
            let hex = String(s.value, radix: 16)
            out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}
