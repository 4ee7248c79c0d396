import NIOCore
import RESP
import StrataCluster
import StrataStore

/// MULTI, EXEC, DISCARD, WATCH and UNWATCH with Redis 7's semantics.
///
/// Between MULTI and EXEC the executor queues a client's commands (`+QUEUED`); a command refused
/// when queued (unknown, wrong arity) makes EXEC answer EXECABORT. EXEC runs the queue as one
/// atomic unit (`CommandExecutor.atomically`). WATCH remembers each key's stamp (its newest
/// record's version and whether it was live) from the key's coordinator; EXEC answers a null
/// array when any stamp changed. In a cluster the queued and watched keys must share a
/// coordinator (else CROSSSLOT), and the whole unit runs there (`STRATA.EXEC`).
extension Commands {
    static let transactions: [CommandSpec] = [
        CommandSpec("multi", arity: 1, flags: [.admin, .noScript]) { inv in
            let nested = inv.session.state.withLock { s -> Bool in
                if s.transaction != nil { return true }
                s.transaction = ClientSession.Transaction()
                return false
            }
            if nested { throw CommandError("ERR MULTI calls can not be nested") }
            inv.ok()
            return .done
        },

        CommandSpec("discard", arity: 1, flags: [.admin, .noScript]) { inv in
            let open = inv.session.state.withLock { s -> Bool in
                defer {
                    s.transaction = nil
                    s.watched = []
                }
                return s.transaction != nil
            }
            guard open else { throw CommandError("ERR DISCARD without MULTI") }
            inv.ok()
            return .done
        },

        CommandSpec("unwatch", arity: 1, flags: [.admin, .noScript]) { inv in
            inv.session.state.withLock { $0.watched = [] }
            inv.ok()
            return .done
        },

        CommandSpec("watch", arity: -2, flags: [.admin, .local, .noScript], keys: (1, -1, 1)) { inv in
            if inv.session.state.withLock({ $0.transaction != nil }) { throw CommandError("ERR WATCH inside MULTI is not allowed") }
            let keys = Array(inv.arguments.dropFirst())
            let executor = inv.server.executor
            let caller = Caller(session: inv.session, eventLoop: inv.eventLoop, origin: .client, version: .v2, authenticated: true)
            // Each stamp comes from the key's coordinator (here on a single node).
            let stamps = keys.map { key in
                executor.run([ByteBuffer(string: "STRATA.STAMP"), key], caller: caller, placement: .byOwner)
            }
            let session = inv.session
            let watched = EventLoopFuture.whenAllSucceed(stamps, on: inv.eventLoop).flatMapThrowing { replies -> Reply in
                var entries: [(key: [UInt8], stamp: String)] = []
                for (key, reply) in zip(keys, replies) {
                    if reply.isError { return reply }
                    var bytes = reply.bytes
                    guard let parsed = try? RESPReplyParser().next(&bytes), let stamp = parsed.string else {
                        return .error("ERR could not read the key's version from its owner")
                    }
                    entries.append((Array(key.readableBytesView), stamp))
                }
                session.state.withLock { $0.watched += entries }
                return .ok
            }
            return .deferred(watched)
        },

        CommandSpec("exec", arity: 1, flags: [.admin, .write, .noScript]) { inv in
            let (transaction, watched) = inv.session.state.withLock { s in
                defer {
                    s.transaction = nil
                    s.watched = []
                }
                return (s.transaction, s.watched)
            }
            guard let transaction else { throw CommandError("ERR EXEC without MULTI") }
            if transaction.aborted { throw CommandError("EXECABORT Transaction discarded because of previous errors.") }
            let caller = Caller(session: inv.session, eventLoop: inv.eventLoop, origin: inv.origin, version: inv.version, authenticated: true)
            return try runTransaction(transaction.commands, watched: watched, server: inv.server, caller: caller, into: &inv.out)
        },

        // A transaction forwarded by the node its client is connected to: `STRATA.EXEC <watched>
        // [<key> <stamp>]... <commands> [<argc> <arg>...]...`; runs here as one unit.
        CommandSpec("strata.exec", arity: -3, flags: [.admin, .write, .noScript]) { inv in
            var i = 1
            func next() throws -> ByteBuffer {
                guard i < inv.arguments.count else { throw CommandError.syntax }
                defer { i += 1 }
                return inv.arguments[i]
            }
            func count() throws -> Int {
                guard let n = Invocation.parseInteger(try next().readableBytesView), n >= 0 else { throw CommandError.syntax }
                return n
            }
            var watched: [(key: [UInt8], stamp: String)] = []
            for _ in 0..<(try count()) { watched.append((Array(try next().readableBytesView), String(buffer: try next()))) }
            var commands: [[ByteBuffer]] = []
            for _ in 0..<(try count()) {
                let argc = try count()
                guard argc > 0 else { throw CommandError.syntax }
                commands.append(try (0..<argc).map { _ in try next() })
            }
            let caller = Caller(session: inv.session, eventLoop: inv.eventLoop, origin: .peer, version: inv.version, authenticated: true)
            return try runTransaction(commands, watched: watched, server: inv.server, caller: caller, here: true, into: &inv.out)
        },

        // A key's stamp for WATCH, read on its coordinator.
        CommandSpec("strata.stamp", arity: 2, flags: .noScript, keys: (1, 1, 1)) { inv in
            let (key, store) = (inv.bytes(1), inv.store)
            return try inv.offload { out, _ in out.writeRESPBulk(store.stamp(key).text) }
        },
    ]

    /// Runs a transaction's commands as one atomic unit: here, or on the coordinator of its keys.
    static func runTransaction(
        _ commands: [[ByteBuffer]], watched: [(key: [UInt8], stamp: String)], server: Server, caller: Caller,
        here: Bool = false, into out: inout ByteBuffer
    ) throws -> Outcome {
        let executor = server.executor
        var keys = watched.map(\.key)
        for command in commands {
            guard let spec = executor.commands.lookup(command[0]) else { continue }
            keys += spec.keys(in: command).map { Array($0.readableBytesView) }
        }
        if !here, !keys.isEmpty, let cluster = server.cluster, cluster.isClustered {
            let owners = keys.map { cluster.owners(of: $0) }
            guard Set(owners.map(\.first)).count == 1, let coordinatorOwners = owners.first else {
                throw CommandError.crossSlot
            }
            guard let coordinator = coordinatorOwners.first else { throw CommandError("ERR no live owner of this key in the cluster") }
            if coordinator != cluster.nodeID {
                var arguments = [ByteBuffer(string: "STRATA.EXEC"), ByteBuffer(string: String(watched.count))]
                for (key, stamp) in watched { arguments += [ByteBuffer(bytes: key), ByteBuffer(string: stamp)] }
                arguments.append(ByteBuffer(string: String(commands.count)))
                for command in commands { arguments += [ByteBuffer(string: String(command.count))] + command }
                return .deferred(executor.forward(arguments, to: coordinatorOwners, caller: caller))
            }
        }
        let version = caller.version
        let outcome = executor.atomically(keys: keys, kind: .transaction, caller: caller) { session in
            guard session.watchesHold(watched) else { return .nullArray(version) }
            return .array(commands.map { session.call($0, version: version) }, version: version)
        }
        switch outcome {
        case .now(var reply):
            out.writeBuffer(&reply.bytes)
            return .done
        case .deferred(let future):
            return .deferred(future)
        }
    }
}
