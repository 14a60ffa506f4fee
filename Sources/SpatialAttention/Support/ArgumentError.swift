/// A layer option outside its domain (a negative exponent, a zero head count). The message names
/// the option and its value.
public struct ArgumentError: Error, Equatable, Sendable, CustomStringConvertible {
    public let message: String

    public init(_ message: String) { self.message = message }

    public var description: String { "ArgumentError: \(message)" }
}
