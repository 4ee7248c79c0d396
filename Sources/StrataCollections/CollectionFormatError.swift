/// Why `init(deserializing:)` rejected its input: the bytes are not a value this module wrote.
public struct CollectionFormatError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What was wrong, e.g. "truncated input" or "intset members out of order".
    public let reason: String

    /// An error carrying `reason`.
    public init(_ reason: String) { self.reason = reason }

    public var description: String { "corrupt collection value: \(reason)" }
}
