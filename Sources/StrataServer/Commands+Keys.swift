import NIOCore
import RESP
import StrataStore

extension Commands {
    static let keys: [CommandSpec] = [
        deleteCommand("del"),
        deleteCommand("unlink"),

        CommandSpec("exists", arity: -2, keys: (1, -1, 1)) { inv in
            let keys = Array(inv.arguments.dropFirst())
            let store = inv.store
            return try inv.run(near: keys) { out, _ in
                out.writeRESPInteger(keys.reduce(0) { $0 + (store.exists(Array($1.readableBytesView)) ? 1 : 0) })
            }
        },

        expireCommand("expire", unit: 1000, absolute: false),
        expireCommand("pexpire", unit: 1, absolute: false),
        expireCommand("expireat", unit: 1000, absolute: true),
        expireCommand("pexpireat", unit: 1, absolute: true),

        ttlCommand("ttl") { remaining in (remaining + 500) / 1000 },
        ttlCommand("pttl") { remaining in remaining },

        CommandSpec("expiretime", arity: 2, keys: (1, 1, 1)) { inv in
            let (key, store) = (inv.bytes(1), inv.store)
            return try inv.run(near: [inv.arguments[1]]) { out, _ in
                guard let at = store.expiry(of: key) else { return out.writeRESPInteger(-2) }
                out.writeRESPInteger(at == 0 ? -1 : Int(at / 1000))
            }
        },

        CommandSpec("pexpiretime", arity: 2, keys: (1, 1, 1)) { inv in
            let (key, store) = (inv.bytes(1), inv.store)
            return try inv.run(near: [inv.arguments[1]]) { out, _ in
                guard let at = store.expiry(of: key) else { return out.writeRESPInteger(-2) }
                out.writeRESPInteger(at == 0 ? -1 : Int(at))
            }
        },

        CommandSpec("persist", arity: 2, flags: .write, keys: (1, 1, 1)) { inv in
            let (key, store) = (inv.bytes(1), inv.store)
            return try inv.run(near: [inv.arguments[1]]) { out, _ in
                out.writeRESPInteger(try store.persist(key) ? 1 : 0)
            }
        },

        CommandSpec("type", arity: 2, keys: (1, 1, 1)) { inv in
            let (key, store) = (inv.bytes(1), inv.store)
            return try inv.run(near: [inv.arguments[1]]) { out, _ in
                out.writeRESPSimpleString(store.kind(of: key)?.name ?? "none")
            }
        },

    ]

    static func deleteCommand(_ name: String) -> CommandSpec {
        CommandSpec(name, arity: -2, flags: .write, keys: (1, -1, 1)) { inv in
            let keys = Array(inv.arguments.dropFirst())
            let store = inv.store
            return try inv.run(near: keys) { out, _ in
                var deleted = 0
                for key in keys where try store.delete(Array(key.readableBytesView)) { deleted += 1 }
                out.writeRESPInteger(deleted)
            }
        }
    }

    /// EXPIRE, PEXPIRE, EXPIREAT and PEXPIREAT, with Redis 7's NX, XX, GT and LT.
    static func expireCommand(_ name: String, unit: Int, absolute: Bool) -> CommandSpec {
        CommandSpec(name, arity: -3, flags: .write, keys: (1, 1, 1)) { inv in
            var (nx, xx, gt, lt) = (false, false, false, false)
            for i in 3..<inv.arguments.count {
                switch inv.upper(i) {
                case "NX": nx = true
                case "XX": xx = true
                case "GT": gt = true
                case "LT": lt = true
                default: throw CommandError("ERR Unsupported option \(inv.string(i))")
                }
            }
            if nx && (xx || gt || lt) {
                throw CommandError("ERR NX and XX, GT or LT options at the same time are not compatible")
            }
            if gt && lt { throw CommandError("ERR GT and LT options at the same time are not compatible") }
            let amount = try inv.integer(2)  // after the options, as Redis checks them
            let now = currentTimeMilliseconds()
            let (ms, o1) = amount.multipliedReportingOverflow(by: unit)
            guard !o1 else { throw CommandError.invalidExpire(name) }
            let (at, o2) = absolute ? (Int64(ms), false) : Int64(ms).addingReportingOverflow(now)
            guard !o2 else { throw CommandError.invalidExpire(name) }
            let (key, store) = (inv.bytes(1), inv.store)
            let (onlyNew, onlyExisting, greater, less) = (nx, xx, gt, lt)
            return try inv.run(near: [inv.arguments[1]]) { out, _ in
                let changed = try store.update(key, accepting: nil) { current -> (Mutation, Bool) in
                    guard let current else { return (.none, false) }
                    let existing = current.expiresAt  // 0: no expiry, which counts as infinite
                    if onlyNew && existing != 0 { return (.none, false) }
                    if onlyExisting && existing == 0 { return (.none, false) }
                    if greater && (existing == 0 || at <= existing) { return (.none, false) }
                    if less && existing != 0 && at >= existing { return (.none, false) }
                    // A time not in the future deletes the key; `.expire` does that.
                    return (.expire(at: max(at, 1)), true)
                }
                out.writeRESPInteger(changed ? 1 : 0)
            }
        }
    }

    static func ttlCommand(_ name: String, _ convert: @escaping @Sendable (Int) -> Int) -> CommandSpec {
        CommandSpec(name, arity: 2, keys: (1, 1, 1)) { inv in
            let (key, store) = (inv.bytes(1), inv.store)
            return try inv.run(near: [inv.arguments[1]]) { out, _ in
                guard let at = store.expiry(of: key) else { return out.writeRESPInteger(-2) }
                if at == 0 { return out.writeRESPInteger(-1) }
                out.writeRESPInteger(convert(max(0, Int(at - currentTimeMilliseconds()))))
            }
        }
    }
}
