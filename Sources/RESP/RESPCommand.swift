import NIOCore

/// One command as a client sent it: the command name and its arguments, as raw bytes.
///
/// The buffers are slices of the connection's read buffer (no copy).
public struct RESPCommand: Sendable, Equatable {
    /// The command name first, then the arguments.
    public var arguments: [ByteBuffer]

    public init(arguments: [ByteBuffer]) {
        self.arguments = arguments
    }

    /// Convenience for tests and tools: a command from strings.
    public init(_ strings: String...) {
        self.arguments = strings.map { ByteBuffer(string: $0) }
    }
}

/// The bounds a decoder enforces, so that no client can make a node buffer without limit.
public struct RESPDecoderLimits: Sendable {
    /// Largest bulk string (argument) accepted, in bytes.
    public var maxBulkLength: Int
    /// Most arguments one command may have.
    public var maxArguments: Int
    /// Longest inline (telnet-style) command line, in bytes.
    public var maxInlineLength: Int

    public init(maxBulkLength: Int = 512 << 20, maxArguments: Int = 1 << 20, maxInlineLength: Int = 64 << 10) {
        self.maxBulkLength = maxBulkLength
        self.maxArguments = maxArguments
        self.maxInlineLength = maxInlineLength
    }
}

/// A malformed request. After one, the connection's byte stream cannot be trusted: a server
/// replies with `message` as an error and closes that connection.
public struct RESPProtocolError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The error reply, in Redis' words (for example `ERR Protocol error: invalid bulk length`).
    public let message: String

    init(_ detail: String) {
        self.message = "ERR Protocol error: \(detail)"
    }

    public var description: String { message }

    static let invalidMultibulkLength = RESPProtocolError("invalid multibulk length")
    static let invalidBulkLength = RESPProtocolError("invalid bulk length")
    static let tooBigInlineRequest = RESPProtocolError("too big inline request")
    static let unbalancedQuotes = RESPProtocolError("unbalanced quotes in request")
    static let missingCRLF = RESPProtocolError("bulk string not terminated by CRLF")
    static func expectedDollar(got byte: UInt8) -> RESPProtocolError {
        let shown = byte >= 0x20 && byte < 0x7F ? String(UnicodeScalar(byte)) : String(format16: byte)
        return RESPProtocolError("expected '$', got '\(shown)'")
    }
}

extension String {
    fileprivate init(format16 byte: UInt8) {
        let digits = Array("0123456789abcdef".utf8)
        self = "\\x" + String(decoding: [digits[Int(byte >> 4)], digits[Int(byte & 15)]], as: UTF8.self)
    }
}
