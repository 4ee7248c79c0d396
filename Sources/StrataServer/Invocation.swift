import NIOCore
import NIOPosix
import RESP
import StrataStore

/// What a command handler did.
enum Outcome {
    /// The reply is in `Invocation.out`.
    case done
    /// The reply will come from this future (work on the disk thread pool, another node, or a
    /// cluster operation). The future may fail: its error becomes the error reply.
    case deferred(EventLoopFuture<Reply>)
}

/// A client-caused error with the exact reply text Redis gives (without the leading `-`).
struct CommandError: Error {
    let message: String
    init(_ message: String) { self.message = message }

    static let syntax = CommandError("ERR syntax error")
    static let wrongType = CommandError("WRONGTYPE Operation against a key holding the wrong kind of value")
    static let notInteger = CommandError("ERR value is not an integer or out of range")
    static let notFloat = CommandError("ERR value is not a valid float")
    static let overflow = CommandError("ERR increment or decrement would overflow")
    /// Redis Cluster's text; in Strata, keys whose coordinators differ.
    static let crossSlot = CommandError("CROSSSLOT Keys in request don't hash to the same slot")
    static func arity(_ name: String) -> CommandError {
        CommandError("ERR wrong number of arguments for '\(name)' command")
    }
    static func invalidExpire(_ name: String) -> CommandError {
        CommandError("ERR invalid expire time in '\(name)' command")
    }
}

/// One command being executed: its arguments, the connection, and where the reply goes.
struct Invocation {
    let arguments: [ByteBuffer]
    let name: String
    let session: ClientSession
    let server: Server
    let eventLoop: any EventLoop
    let version: RESPVersion
    /// How the command was sent (a client, a peer, or part of another command).
    let origin: CommandOrigin
    var out: ByteBuffer
    /// Set by QUIT: close the connection once the reply is written.
    var closeAfterReply = false

    var store: TieredStore { server.store }

    // MARK: Arguments

    func bytes(_ i: Int) -> [UInt8] { Array(arguments[i].readableBytesView) }
    func string(_ i: Int) -> String { String(buffer: arguments[i]) }
    func upper(_ i: Int) -> String { string(i).uppercased() }

    /// Argument `i` as a Redis integer: optional sign, digits, no spaces, fits in 64 bits.
    func integer(_ i: Int) throws -> Int {
        guard let value = Invocation.parseInteger(arguments[i].readableBytesView) else { throw CommandError.notInteger }
        return value
    }

    static func parseInteger<C: Collection<UInt8>>(_ bytes: C) -> Int? {
        guard !bytes.isEmpty, bytes.count <= 20 else { return nil }
        var value = 0
        var negative = false
        var first = true
        for byte in bytes {
            if first && byte == UInt8(ascii: "-") && bytes.count > 1 {
                negative = true
                first = false
                continue
            }
            if first && byte == UInt8(ascii: "0") && bytes.count > 1 { return nil }  // no leading zeros
            first = false
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let digit = Int(byte - UInt8(ascii: "0"))
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (s, o2) = negative ? m.subtractingReportingOverflow(digit) : m.addingReportingOverflow(digit)
            guard !o1, !o2 else { return nil }
            value = s
        }
        if negative && value == 0 { return nil }  // "-0"
        return value
    }

    // MARK: Replies

    mutating func ok() { out.writeStaticString("+OK\r\n") }
    mutating func error(_ message: String) { out.writeRESPError(message) }
    mutating func null() { out.writeRESPNull(version) }
    mutating func integer(reply value: Int) { out.writeRESPInteger(value) }
    mutating func bulk(_ bytes: [UInt8]) { out.writeRESPBulk(bytes) }
    mutating func bulk(_ text: String) { out.writeRESPBulk(text) }

    // MARK: Where work runs

    /// Runs `work` on the disk thread pool and defers the reply to it, holding the node's gate
    /// shared there. Inside a transaction or script (which holds the gate and runs on a disk
    /// thread already) it runs here and now.
    mutating func offload(_ work: @escaping @Sendable (inout ByteBuffer, RESPVersion) throws -> Void) throws -> Outcome {
        if origin == .atomic {
            try work(&out, version)
            return .done
        }
        let version = self.version
        let gate = server.gate
        let future = server.diskPool.runIfActive(eventLoop: eventLoop) { () -> Reply in
            var buffer = ByteBufferAllocator().buffer(capacity: 64)
            do {
                try gate.shared { try work(&buffer, version) }
                return Reply(buffer)
            } catch {
                return Reply.error(for: error)
            }
        }
        return .deferred(future)
    }

    /// Runs `work` here if every key is in the memory tier (it cannot block on the disk), and on
    /// the disk thread pool otherwise. An error thrown here is the command's error reply.
    mutating func run(near keys: [ByteBuffer], _ work: @escaping @Sendable (inout ByteBuffer, RESPVersion) throws -> Void)
        throws -> Outcome
    {
        let store = self.store
        let allInMemory = keys.allSatisfy { key in key.withUnsafeReadableBytes { store.isInMemory($0) } }
        guard allInMemory else { return try offload(work) }
        try work(&out, version)
        return .done
    }
}
