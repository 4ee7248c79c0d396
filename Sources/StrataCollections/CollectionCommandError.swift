/// A command-level failure a collection operation reports with Redis' exact error text (without
/// the leading "ERR "), e.g. "hash value is not an integer"; the command layer replies with it.
public struct CollectionCommandError: Error, Sendable, Equatable {
    /// Redis' message.
    public let message: String

    /// An error with Redis' `message`.
    public init(_ message: String) { self.message = message }
}
