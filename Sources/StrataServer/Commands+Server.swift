import Foundation
import NIOCore
import RESP
import StrataStore

extension Commands {
    static let server: [CommandSpec] = [
        CommandSpec("info", arity: -1, flags: .admin) { inv in
            let sections = inv.arguments.dropFirst().map { String(buffer: $0).lowercased() }
            let needsCounts = InfoReport.sections(sections).contains { $0 == "keyspace" || $0 == "strata" }
            guard needsCounts else {
                inv.bulk(InfoReport.render(server: inv.server, sections: sections))
                return .done
            }
            guard let cluster = inv.server.clusterIfClustered else {
                // Keys with an expiry are counted by a scan (exact up to a million keys).
                let server = inv.server
                return try inv.offload { out, _ in
                    let counts = try InfoReport.localCounts(server.store)
                    out.writeRESPBulk(InfoReport.render(server: server, sections: sections, keyspace: counts))
                }
            }
            // The keyspace line counts the whole cluster (every live node's share, gathered).
            let server = inv.server
            let future = Commands.clusterCounts(cluster, eventLoop: inv.eventLoop).map { counts -> InfoReport.KeyspaceCounts? in
                let total = counts.reduce((keys: 0, expires: 0)) { ($0.keys + $1.keys, $0.expires + $1.expires) }
                return InfoReport.KeyspaceCounts(cluster: total, node: counts.first ?? (0, 0))
            }.recover { _ in nil }.map { counts in
                var out = ByteBuffer()
                out.writeRESPBulk(InfoReport.render(server: server, sections: sections, keyspace: counts))
                return Reply(out)
            }
            return .deferred(future)
        },

        CommandSpec("command", arity: -1, flags: [.admin, .container]) { inv in
            let table = inv.server.commands.commands
            if inv.arguments.count == 1 {
                inv.out.writeRESPArrayHeader(table.count)
                for spec in table.values.sorted(by: { $0.name < $1.name }) { describe(spec, into: &inv.out) }
                return .done
            }
            switch inv.upper(1) {
            case "COUNT":
                inv.integer(reply: table.count)
            case "INFO":
                let names = inv.arguments.dropFirst(2).map { String(buffer: $0).lowercased() }
                inv.out.writeRESPArrayHeader(names.count)
                for name in names {
                    if let spec = table[name] { describe(spec, into: &inv.out) } else { inv.out.writeRESPNullArray(inv.version) }
                }
            case "DOCS":
                // No docs: clients such as redis-cli fall back to their built-in help.
                inv.out.writeRESPMapHeader(0, inv.version)
            case "LIST":
                inv.out.writeRESPArrayHeader(table.count)
                for name in table.keys.sorted() { inv.bulk(name) }
            case "GETKEYS":
                guard inv.arguments.count >= 4 else { throw CommandError.arity("command|getkeys") }
                let command = Array(inv.arguments.dropFirst(2))
                guard let spec = inv.server.commands.lookup(command[0]) else {
                    throw CommandError("ERR Invalid command specified")
                }
                guard spec.arityMatches(command.count) else {
                    throw CommandError("ERR Invalid number of arguments specified for command")
                }
                // Scripts and functions route by their own numkeys, not by key positions.
                let scripted = ["eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro"].contains(spec.name)
                guard spec.firstKey > 0 || spec.keyFinder != nil || scripted else {
                    throw CommandError("ERR The command has no key arguments")
                }
                let keys = scripted ? CommandSpec.numkeys(at: 2)(command) : spec.keys(in: command)
                inv.out.writeRESPArrayHeader(keys.count)
                for key in keys { inv.out.writeRESPBulk(Array(key.readableBytesView)) }
            default:
                throw CommandError("ERR unknown subcommand '\(inv.string(1))'. Try COMMAND HELP.")
            }
            return .done
        },

        CommandSpec("shutdown", arity: -1, flags: [.admin, .noScript, .noMulti]) { inv in
            // Redis' options; Strata keeps every write on disk anyway, so SAVE and NOSAVE alike
            // stop after the queued writes are applied, and NOW and FORCE change nothing.
            var (save, nosave, abort) = (false, false, false)
            for i in 1..<inv.arguments.count {
                switch inv.upper(i) {
                case "SAVE": save = true
                case "NOSAVE": nosave = true
                case "NOW", "FORCE": break
                case "ABORT": abort = true
                default: throw CommandError.syntax
                }
            }
            if save && nosave || abort && inv.arguments.count > 2 { throw CommandError.syntax }
            if abort { throw CommandError("ERR No shutdown in progress.") }
            guard let stop = inv.server.shutdownHandler.withLock({ $0 }) else {
                throw CommandError("ERR Errors trying to SHUTDOWN. Check logs.")
            }
            inv.server.logger.notice("SHUTDOWN asked by a client", metadata: ["client": "\(inv.session.address)"])
            stop()
            inv.closeAfterReply = true  // no reply, as Redis: the connection just closes
            return .done
        },

        CommandSpec("lastsave", arity: 1, flags: .admin) { inv in
            inv.integer(reply: Int(InfoReport.lastSaveTime(inv.store.statistics, now: currentTimeMilliseconds())))
            return .done
        },

        CommandSpec("lolwut", arity: -1, flags: .admin) { inv in
            var i = 1
            while i < inv.arguments.count {
                guard inv.upper(i) == "VERSION", i + 1 < inv.arguments.count else { break }
                _ = try inv.integer(i + 1)
                i += 2
            }
            inv.bulk("Strata \(StrataVersion.current): a tiered, persistent cache. Redis ver. \(StrataVersion.redisCompatible)\n")
            return .done
        },

        CommandSpec("role", arity: 1, flags: .admin) { inv in
            // Every Strata node is a primary for the keys it coordinates: Redis' master form,
            // offset 0 and no replicas (replication runs over the ring, not Redis' protocol).
            inv.out.writeRESPArrayHeader(3)
            inv.bulk("master")
            inv.integer(reply: 0)
            inv.out.writeRESPArrayHeader(0)
            return .done
        },

        CommandSpec("time", arity: 1, flags: .admin) { inv in
            var ts = timespec()
            clock_gettime(CLOCK_REALTIME, &ts)
            inv.out.writeRESPArrayHeader(2)
            inv.bulk(String(ts.tv_sec))
            inv.bulk(String(ts.tv_nsec / 1000))
            return .done
        },

        CommandSpec("save", arity: 1, flags: .admin) { inv in
            let store = inv.store
            return try inv.offload { out, _ in
                try store.sync()
                out.writeStaticString("+OK\r\n")
            }
        },

        CommandSpec("bgsave", arity: -1, flags: .admin) { inv in
            let (store, logger) = (inv.store, inv.server.logger)
            inv.server.diskPool.runIfActive(eventLoop: inv.eventLoop) { try store.sync() }.whenFailure { error in
                logger.error("BGSAVE could not sync the disk tier", metadata: ["error": "\(error)"])
            }
            inv.out.writeRESPSimpleString("Background saving started")
            return .done
        },

        CommandSpec("strata.tier", arity: 2, flags: .local, keys: (1, 1, 1)) { inv in
            let (key, store) = (inv.bytes(1), inv.store)
            return try inv.offload { out, version in
                let info = store.tier(of: key)
                // A collection also reports its member count and its in-memory size as a value.
                let collection = info.tier == .none || info.kind == .string ? nil : try store.entry(key).map(StoredValue.init)
                out.writeRESPMapHeader(collection == nil ? 6 : 8, version)
                out.writeRESPBulk("tier")
                out.writeRESPBulk(info.tier.rawValue)
                out.writeRESPBulk("type")
                out.writeRESPBulk(info.tier == .none ? "none" : info.kind.name)
                if let collection {
                    out.writeRESPBulk("members")
                    out.writeRESPInteger(collection.memberCount)
                    out.writeRESPBulk("collection_bytes")
                    out.writeRESPInteger(collection.memoryBytes)
                }
                out.writeRESPBulk("value_bytes")
                out.writeRESPInteger(info.valueLength)
                out.writeRESPBulk("stored_bytes")
                out.writeRESPInteger(info.storedLength)
                out.writeRESPBulk("compressed")
                out.writeRESPInteger(info.compressed ? 1 : 0)
                out.writeRESPBulk("version")
                out.writeRESPBulk(info.version.map { "\($0)" } ?? "")
            }
        },
    ]

    /// One COMMAND reply entry, in Redis 7's ten-field form.
    static func describe(_ spec: CommandSpec, into out: inout ByteBuffer) {
        out.writeRESPArrayHeader(10)
        out.writeRESPBulk(spec.name)
        out.writeRESPInteger(spec.arity)
        var flags: [String] = []
        if spec.flags.contains(.write) { flags.append("write") } else { flags.append("readonly") }
        if spec.flags.contains(.noAuth) { flags.append("no_auth") }
        if spec.flags.contains(.admin) { flags.append("fast") }
        out.writeRESPArrayHeader(flags.count)
        for flag in flags { out.writeRESPSimpleString(flag) }
        out.writeRESPInteger(spec.firstKey)
        out.writeRESPInteger(spec.lastKey)
        out.writeRESPInteger(spec.keyStep)
        out.writeRESPArrayHeader(0)  // ACL categories
        out.writeRESPArrayHeader(0)  // tips
        out.writeRESPArrayHeader(0)  // key specs
        out.writeRESPArrayHeader(0)  // subcommands
    }
}
