import Foundation
import NIOCore
import StrataCluster
import RESP
import StrataStore

/// One client connection's state: identity, authentication, protocol version, and what CLIENT
/// LIST shows. Mutated on the connection's event loop; read by CLIENT LIST from any thread, so
/// the fields sit behind a lock.
final class ClientSession: Sendable {
    struct State: Sendable {
        var name = ""
        var authenticated: Bool
        var protocolVersion = RESPVersion.v2
        var libraryName = ""
        var libraryVersion = ""
        var lastCommand = "NULL"
        var lastActivity = currentTimeMilliseconds()
        /// Another node of the cluster (STRATA.PEER): its commands run here, never forwarded.
        var isPeer = false
        /// A MULTI in progress (nil: none).
        var transaction: Transaction?
        /// WATCHed keys and their stamps (`KeyStamp.text`), until EXEC, DISCARD or UNWATCH.
        var watched: [(key: [UInt8], stamp: String)] = []
        /// For WAIT: how many other owners acknowledged this client's latest write coordinated
        /// here, and the nodes its other writes were forwarded to (they know their own counts).
        var acknowledged: EventLoopFuture<Int>?
        var forwardedWritesTo: Set<NodeID> = []
        /// CLIENT REPLY: whether the next replies are sent.
        var replyMode = ReplyMode.on
        /// Pub/sub subscriptions: channels, patterns and shard channels.
        var channels: Set<[UInt8]> = []
        /// In subscription order, as Redis keeps them: PUNSUBSCRIBE with no pattern leaves them in it.
        var patterns: [[UInt8]] = []
        var shardChannels: Set<[UInt8]> = []

        /// In a RESP2 connection, any subscription restricts the commands it may send.
        var isSubscribed: Bool { !channels.isEmpty || !patterns.isEmpty || !shardChannels.isEmpty }
    }

    /// CLIENT REPLY's modes: every reply, none, or none for the next command only.
    enum ReplyMode: Sendable {
        case on, off, skip
    }

    /// A MULTI in progress: the queued commands, and whether one was refused when queued (EXEC
    /// then answers EXECABORT).
    struct Transaction: Sendable {
        var commands: [[ByteBuffer]] = []
        var aborted = false
    }

    let id: UInt64
    let address: String
    let localAddress: String
    let createdAt = currentTimeMilliseconds()
    let state: Locked<State>
    /// Closes the connection (CLIENT KILL), set by its handler once the channel is active.
    let closer = Locked<(@Sendable () -> Void)?>(nil)
    /// Sends a pub/sub message to the client from any thread, in its handler's order.
    let pusher = Locked<(@Sendable (ByteBuffer) -> Void)?>(nil)

    init(id: UInt64, address: String, localAddress: String, authenticated: Bool) {
        self.id = id
        self.address = address
        self.localAddress = localAddress
        self.state = Locked(State(authenticated: authenticated))
    }

    var protocolVersion: RESPVersion { state.withLock { $0.protocolVersion } }

    /// Closes the connection from any thread; a no-op once closed.
    func kill() {
        closer.withLock { $0 }?()
    }

    /// Sends `message` to the client (a pub/sub message, already in its protocol).
    func push(_ message: ByteBuffer) {
        pusher.withLock { $0 }?(message)
    }

    /// The CLIENT LIST / CLIENT INFO line, with Redis' field names.
    func describe() -> String {
        let now = currentTimeMilliseconds()
        return state.withLock { s in
            let multi = s.transaction.map { String($0.commands.count) } ?? "-1"
            let flags = s.transaction != nil ? "x" : s.isSubscribed ? "P" : "N"
            return "id=\(id) addr=\(address) laddr=\(localAddress) fd=-1 name=\(s.name) age=\((now - createdAt) / 1000) "
                + "idle=\((now - s.lastActivity) / 1000) flags=\(flags) db=0 sub=\(s.channels.count) psub=\(s.patterns.count) "
                + "ssub=\(s.shardChannels.count) multi=\(multi) qbuf=0 qbuf-free=0 "
                + "argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd=\(s.lastCommand) "
                + "user=default redir=-1 resp=\(s.protocolVersion.rawValue) lib-name=\(s.libraryName) lib-ver=\(s.libraryVersion)"
        }
    }
}
