/// A problem found while parsing a header, before the file's path is attached.
struct HeaderProblem: Error {
    let problem: FileFormatError.Problem

    static func bad(_ detail: String) -> HeaderProblem { HeaderProblem(problem: .badHeader(detail: detail)) }
}

/// The dictionary of an `.npy` header: `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`.
///
/// NumPy writes it with Python's `repr` and reads it with `ast.literal_eval`. This parser accepts the
/// subset of Python literal syntax that a valid header uses — a dict with string keys, string,
/// `True`/`False` and tuple-of-integer values, optional trailing commas, spaces and a final newline —
/// and requires exactly the three keys, once each. It runs in one pass over the bytes with no
/// recursion, so no header can make it slow or deep.
struct NPYHeader {
    var descr: String
    var fortranOrder: Bool
    var shape: [Int]

    init(parsing bytes: UnsafeRawBufferPointer) throws(HeaderProblem) {
        var parser = Parser(bytes: bytes)
        var descr: String?
        var fortranOrder: Bool?
        var shape: [Int]?

        try parser.expect(UInt8(ascii: "{"))
        parser.skipSpace()
        while parser.peek() != UInt8(ascii: "}") {
            let keyOffset = parser.offset
            let key = try parser.string()
            parser.skipSpace()
            try parser.expect(UInt8(ascii: ":"))
            parser.skipSpace()
            switch key {
            case "descr":
                guard descr == nil else { throw .bad("key 'descr' appears twice") }
                if parser.peek() == UInt8(ascii: "[") {
                    throw HeaderProblem(problem: .unsupportedDType("structured (record) dtype"))
                }
                descr = try parser.string()
            case "fortran_order":
                guard fortranOrder == nil else { throw .bad("key 'fortran_order' appears twice") }
                fortranOrder = try parser.bool()
            case "shape":
                guard shape == nil else { throw .bad("key 'shape' appears twice") }
                shape = try parser.tuple()
            default:
                throw .bad("unexpected key '\(key)' at byte \(keyOffset)")
            }
            parser.skipSpace()
            if parser.peek() == UInt8(ascii: ",") {
                parser.offset += 1
                parser.skipSpace()
            } else if parser.peek() != UInt8(ascii: "}") {
                throw .bad("expected ',' or '}' at byte \(parser.offset)")
            }
        }
        parser.offset += 1
        // After the dict: only the padding NumPy writes (spaces, a newline; old writers used NULs).
        while let byte = parser.peek() {
            guard byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 || byte == 0 else {
                throw .bad("unexpected byte 0x\(String(byte, radix: 16)) after the dictionary at byte \(parser.offset)")
            }
            parser.offset += 1
        }
        guard let descr else { throw .bad("missing key 'descr'") }
        guard let fortranOrder else { throw .bad("missing key 'fortran_order'") }
        guard let shape else { throw .bad("missing key 'shape'") }
        self.descr = descr
        self.fortranOrder = fortranOrder
        self.shape = shape
    }

    /// A cursor over the header bytes.
    private struct Parser {
        let bytes: UnsafeRawBufferPointer
        var offset = 0

        func peek() -> UInt8? { offset < bytes.count ? bytes[offset] : nil }

        mutating func skipSpace() {
            while let byte = peek(), byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D { offset += 1 }
        }

        mutating func expect(_ byte: UInt8) throws(HeaderProblem) {
            guard peek() == byte else {
                throw .bad("expected '\(Character(Unicode.Scalar(byte)))' at byte \(offset)")
            }
            offset += 1
        }

        /// A Python string literal in single or double quotes, printable ASCII, no escapes.
        mutating func string() throws(HeaderProblem) -> String {
            let start = offset
            guard let quote = peek(), quote == UInt8(ascii: "'") || quote == UInt8(ascii: "\"") else {
                throw .bad("expected a quoted string at byte \(offset)")
            }
            offset += 1
            var text = ""
            while true {
                guard let byte = peek() else { throw .bad("unterminated string starting at byte \(start)") }
                offset += 1
                if byte == quote { return text }
                guard byte >= 0x20 && byte < 0x7F && byte != UInt8(ascii: "\\") else {
                    throw .bad("unsupported character 0x\(String(byte, radix: 16)) in a string at byte \(offset - 1)")
                }
                guard text.utf8.count < 256 else { throw .bad("string starting at byte \(start) is too long") }
                text.unicodeScalars.append(Unicode.Scalar(byte))
            }
        }

        mutating func bool() throws(HeaderProblem) -> Bool {
            if matches("True") { return true }
            if matches("False") { return false }
            throw .bad("expected True or False at byte \(offset)")
        }

        private mutating func matches(_ word: String) -> Bool {
            let utf8 = Array(word.utf8)
            guard offset + utf8.count <= bytes.count,
                  utf8.indices.allSatisfy({ bytes[offset + $0] == utf8[$0] }) else { return false }
            offset += utf8.count
            return true
        }

        /// A tuple of non-negative integers: `()`, `(3,)`, `(2, 3)`, `(2, 3,)`. `(3)` is the integer
        /// 3 in Python, not a tuple, and is refused as NumPy refuses it.
        mutating func tuple() throws(HeaderProblem) -> [Int] {
            let start = offset
            try expect(UInt8(ascii: "("))
            var values: [Int] = []
            var trailingComma = false
            skipSpace()
            while peek() != UInt8(ascii: ")") {
                values.append(try integer())
                skipSpace()
                trailingComma = false
                if peek() == UInt8(ascii: ",") {
                    offset += 1
                    trailingComma = true
                    skipSpace()
                } else if peek() != UInt8(ascii: ")") {
                    throw .bad("expected ',' or ')' in the shape at byte \(offset)")
                }
            }
            offset += 1
            guard values.count != 1 || trailingComma else {
                throw .bad("shape at byte \(start) is a parenthesised integer, not a tuple (write '(n,)')")
            }
            return values
        }

        /// A decimal integer without sign or leading zeros (Python syntax), that fits in `Int`.
        mutating func integer() throws(HeaderProblem) -> Int {
            let start = offset
            if peek() == UInt8(ascii: "-") { throw .bad("negative dimension at byte \(start)") }
            var value = 0
            while let byte = peek(), byte >= 0x30 && byte <= 0x39 {
                if offset > start && value == 0 { throw .bad("integer with a leading zero at byte \(start)") }
                let (times10, o1) = value.multipliedReportingOverflow(by: 10)
                let (sum, o2) = times10.addingReportingOverflow(Int(byte - 0x30))
                guard !o1 && !o2 else { throw .bad("dimension at byte \(start) does not fit in Int") }
                value = sum
                offset += 1
            }
            guard offset > start else { throw .bad("expected a dimension at byte \(start)") }
            return value
        }
    }
}
