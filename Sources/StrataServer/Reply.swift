import NIOCore
import RESP

/// A command's finished reply: its RESP bytes, and whether it is an error reply.
///
/// Carrying the error bit beside the bytes lets the executor decide on replication, durability
/// waits and error metrics without looking at the bytes.
struct Reply: Sendable {
    var bytes: ByteBuffer
    var isError: Bool

    init(_ bytes: ByteBuffer, isError: Bool = false) {
        self.bytes = bytes
        self.isError = isError
    }

    /// A reply relayed unchanged from another node.
    init(relayed reply: RESPReply) {
        self.init(reply.raw, isError: reply.kind == .error)
    }

    /// An error reply with Redis' text (without the leading `-`).
    static func error(_ message: String) -> Reply {
        var bytes = ByteBuffer()
        bytes.writeRESPError(message)
        return Reply(bytes, isError: true)
    }

    /// The error reply for anything a command can throw.
    static func error(for error: any Error) -> Reply {
        .error(Server.replyText(for: error))
    }

    static let ok = Reply(ByteBuffer(string: "+OK\r\n"))

    /// The value of an integer reply (`:n`), for combining the replies of a split command.
    var integer: Int? {
        guard !isError, bytes.readableBytes > 3, bytes.getInteger(at: bytes.readerIndex, as: UInt8.self) == UInt8(ascii: ":")
        else { return nil }
        let digits = bytes.readableBytesView.dropFirst().prefix { $0 != UInt8(ascii: "\r") }
        return Int(String(decoding: digits, as: UTF8.self))
    }
}
