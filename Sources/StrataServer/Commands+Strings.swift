import NIOCore
import RESP
import StrataStore

/// The expiry options SET and GETEX share.
struct ExpiryOption: Sendable {
    /// Absolute expiry in ms since the epoch; nil if no option was given.
    var at: Int64?
    var keep = false
    var persist = false
    /// Which of EX, PX, EXAT, PXAT set `at` (repeating the same one is allowed, as in Redis).
    var unit: String?

    /// If `option` is EX, PX, EXAT or PXAT, takes its value (argument `i + 1`) and returns true.
    mutating func parseTime(_ option: String, _ inv: Invocation, at i: Int, command: String, now: Int64) throws -> Bool {
        guard ["EX", "PX", "EXAT", "PXAT"].contains(option) else { return false }
        guard !keep, !persist, unit == nil || unit == option, i + 1 < inv.arguments.count else { throw CommandError.syntax }
        unit = option
        at = try ExpiryOption.absolute(option, try inv.integer(i + 1), command: command, now: now)
        return true
    }

    /// Parses EX/PX/EXAT/PXAT `value` into an absolute time. Errors as Redis words them.
    static func absolute(_ option: String, _ value: Int, command: String, now: Int64) throws -> Int64 {
        guard value > 0 else { throw CommandError.invalidExpire(command) }
        let (ms, overflow) = option.hasPrefix("E") ? value.multipliedReportingOverflow(by: 1000) : (value, false)
        guard !overflow else { throw CommandError.invalidExpire(command) }
        if option.hasSuffix("AT") { return Int64(ms) }
        let (at, overflow2) = Int64(ms).addingReportingOverflow(now)
        guard !overflow2 else { throw CommandError.invalidExpire(command) }
        return at
    }
}

extension Commands {
    static let strings: [CommandSpec] = [
        CommandSpec("get", arity: 2, keys: (1, 1, 1)) { inv in
            let key = inv.arguments[1]
            let store = inv.store
            let read = key.withUnsafeReadableBytes { k in
                store.getFromMemory(k, into: &inv.out) { out, value in out.writeRESPBulk(value) }
            }
            switch read {
            case .hit: return .done
            case .wrongType: throw CommandError.wrongType
            case .absent:
                inv.null()
                return .done
            case .miss:
                if store.diskReadsAreResident {
                    // The disk tier is all in the page cache: reading it here costs about a
                    // microsecond, less than a hand-off to a disk thread and back.
                    let found: Void? = try key.withUnsafeReadableBytes { k in try store.getAfterMemoryMiss(k) { v in inv.out.writeRESPBulk(v) } }
                    if found == nil { inv.null() }
                    return .done
                }
                return try inv.offload { out, version in
                    let found: Void? = try key.withUnsafeReadableBytes { k in try store.getAfterMemoryMiss(k) { v in out.writeRESPBulk(v) } }
                    if found == nil { out.writeRESPNull(version) }
                }
            }
        },

        CommandSpec("set", arity: -3, flags: .write, keys: (1, 1, 1)) { inv in
            let now = currentTimeMilliseconds()
            var condition = WriteCondition.always
            var returnOld = false
            var expiry = ExpiryOption()
            var i = 3
            while i < inv.arguments.count {
                let option = inv.upper(i)
                switch option {
                // As in Redis, repeating an option is allowed; only conflicting ones are errors.
                case "NX":
                    if case .ifPresent = condition { throw CommandError.syntax }
                    condition = .ifAbsent
                case "XX":
                    if case .ifAbsent = condition { throw CommandError.syntax }
                    condition = .ifPresent
                case "GET":
                    returnOld = true
                case "KEEPTTL":
                    guard expiry.unit == nil else { throw CommandError.syntax }
                    expiry.keep = true
                default:
                    guard try expiry.parseTime(option, inv, at: i, command: "set", now: now) else { throw CommandError.syntax }
                    i += 1
                }
                i += 1
            }
            let key = inv.arguments[1]
            let value = inv.arguments[2]
            let store = inv.store
            if case .always = condition, !returnOld, !expiry.keep {
                // Plain SET: nothing to read first. Large values compress off the event loop.
                let at = expiry.at ?? 0
                if value.readableBytes >= 64 << 10 {
                    return try inv.offload { out, _ in
                        try key.withUnsafeReadableBytes { k in
                            try value.withUnsafeReadableBytes { v in try store.set(k, v, expiresAt: at) }
                        }
                        out.writeStaticString("+OK\r\n")
                    }
                }
                try key.withUnsafeReadableBytes { k in
                    try value.withUnsafeReadableBytes { v in try store.set(k, v, expiresAt: at) }
                }
                inv.ok()
                return .done
            }
            let keyBytes = inv.bytes(1)
            let valueBytes = inv.bytes(2)
            let (when, options, reply) = (condition, expiry, returnOld)
            return try inv.run(near: [key]) { out, version in
                // Without GET a SET replaces a key of any type; with GET it must be a string.
                let (applied, old) = try store.update(keyBytes, accepting: reply ? .string : nil) { current -> (Mutation, (Bool, [UInt8]?)) in
                    switch when {
                    case .ifAbsent where current != nil, .ifPresent where current == nil:
                        return (.none, (false, current?.value))
                    default:
                        let at = options.keep ? (current?.expiresAt ?? 0) : (options.at ?? 0)
                        return (.set(value: valueBytes, expiresAt: at), (true, current?.value))
                    }
                }
                if reply {
                    if let old { out.writeRESPBulk(old) } else { out.writeRESPNull(version) }
                } else if applied {
                    out.writeStaticString("+OK\r\n")
                } else {
                    out.writeRESPNull(version)
                }
            }
        },

        CommandSpec("setnx", arity: 3, flags: .write, keys: (1, 1, 1)) { inv in
            let (key, value, store) = (inv.bytes(1), inv.bytes(2), inv.store)
            return try inv.run(near: [inv.arguments[1]]) { out, _ in
                out.writeRESPInteger(try store.set(key, value, condition: .ifAbsent) ? 1 : 0)
            }
        },

        CommandSpec("setex", arity: 4, flags: .write, keys: (1, 1, 1)) { inv in
            let at = try ExpiryOption.absolute("EX", try inv.integer(2), command: "setex", now: currentTimeMilliseconds())
            try inv.store.set(inv.bytes(1), inv.bytes(3), expiresAt: at)
            inv.ok()
            return .done
        },

        CommandSpec("psetex", arity: 4, flags: .write, keys: (1, 1, 1)) { inv in
            let at = try ExpiryOption.absolute("PX", try inv.integer(2), command: "psetex", now: currentTimeMilliseconds())
            try inv.store.set(inv.bytes(1), inv.bytes(3), expiresAt: at)
            inv.ok()
            return .done
        },

        CommandSpec("getset", arity: 3, flags: .write, keys: (1, 1, 1)) { inv in
            let (key, value, store) = (inv.bytes(1), inv.bytes(2), inv.store)
            return try inv.run(near: [inv.arguments[1]]) { out, version in
                let old = try store.update(key) { current in (.set(value: value, expiresAt: 0), current?.value) }
                if let old { out.writeRESPBulk(old) } else { out.writeRESPNull(version) }
            }
        },

        CommandSpec("getex", arity: -2, flags: .write, keys: (1, 1, 1)) { inv in
            let now = currentTimeMilliseconds()
            var expiry = ExpiryOption()
            var i = 2
            while i < inv.arguments.count {
                let option = inv.upper(i)
                switch option {
                case "PERSIST":
                    guard expiry.unit == nil else { throw CommandError.syntax }
                    expiry.persist = true
                default:
                    guard try expiry.parseTime(option, inv, at: i, command: "getex", now: now) else { throw CommandError.syntax }
                    i += 1
                }
                i += 1
            }
            let (key, store, options) = (inv.bytes(1), inv.store, expiry)
            return try inv.run(near: [inv.arguments[1]]) { out, version in
                let value = try store.update(key) { current -> (Mutation, [UInt8]?) in
                    guard let current else { return (.none, nil) }
                    if let at = options.at { return (.expire(at: at), current.value) }
                    if options.persist && current.expiresAt != 0 { return (.expire(at: 0), current.value) }
                    return (.none, current.value)
                }
                if let value { out.writeRESPBulk(value) } else { out.writeRESPNull(version) }
            }
        },

        CommandSpec("getdel", arity: 2, flags: .write, keys: (1, 1, 1)) { inv in
            let (key, store) = (inv.bytes(1), inv.store)
            return try inv.run(near: [inv.arguments[1]]) { out, version in
                let value = try store.update(key) { current in (current == nil ? .none : .delete, current?.value) }
                if let value { out.writeRESPBulk(value) } else { out.writeRESPNull(version) }
            }
        },

        CommandSpec("mget", arity: -2, keys: (1, -1, 1)) { inv in
            let keys = Array(inv.arguments.dropFirst())
            let store = inv.store
            return try inv.run(near: keys) { out, version in
                out.writeRESPArrayHeader(keys.count)
                for key in keys {
                    // A key of another type is a null here, as in Redis.
                    let found: Void?? = key.withUnsafeReadableBytes { k in try? store.get(k) { v in out.writeRESPBulk(v) } }
                    if found == nil || found! == nil { out.writeRESPNull(version) }
                }
            }
        },

        CommandSpec("mset", arity: -3, flags: .write, keys: (1, -1, 2)) { inv in
            guard inv.arguments.count % 2 == 1 else { throw CommandError.arity("mset") }
            let pairs = stride(from: 1, to: inv.arguments.count, by: 2).map { (key: inv.bytes($0), value: inv.bytes($0 + 1)) }
            let store = inv.store
            let total = pairs.reduce(0) { $0 + $1.value.count }
            if total >= 64 << 10 {
                return try inv.offload { out, _ in
                    try store.setAll(pairs, onlyIfNoneExist: false)
                    out.writeStaticString("+OK\r\n")
                }
            }
            try store.setAll(pairs, onlyIfNoneExist: false)
            inv.ok()
            return .done
        },

        CommandSpec("msetnx", arity: -3, flags: .write, keys: (1, -1, 2)) { inv in
            guard inv.arguments.count % 2 == 1 else { throw CommandError.arity("msetnx") }
            let pairs = stride(from: 1, to: inv.arguments.count, by: 2).map { (key: inv.bytes($0), value: inv.bytes($0 + 1)) }
            let store = inv.store
            return try inv.offload { out, _ in
                out.writeRESPInteger(try store.setAll(pairs, onlyIfNoneExist: true) ? 1 : 0)
            }
        },

        CommandSpec("append", arity: 3, flags: .write, keys: (1, 1, 1)) { inv in
            let (key, suffix, store, limit) = (inv.bytes(1), inv.bytes(2), inv.store, inv.server.configuration.maxValueSize)
            return try inv.run(near: [inv.arguments[1]]) { out, _ in
                let length = try store.update(key) { current -> (Mutation, Int) in
                    let value = (current?.value ?? []) + suffix
                    guard value.count <= limit else {
                        throw CommandError("ERR string exceeds maximum allowed size (max-value-size)")
                    }
                    return (.set(value: value, expiresAt: current?.expiresAt ?? 0), value.count)
                }
                out.writeRESPInteger(length)
            }
        },

        CommandSpec("strlen", arity: 2, keys: (1, 1, 1)) { inv in
            let (key, store) = (inv.arguments[1], inv.store)
            return try inv.run(near: [key]) { out, _ in
                let length = try key.withUnsafeReadableBytes { k in try store.get(k) { $0.count } } ?? 0
                out.writeRESPInteger(length)
            }
        },

        incrementCommand("incr", arity: 2) { _ in 1 },
        incrementCommand("decr", arity: 2) { _ in -1 },
        incrementCommand("incrby", arity: 3) { inv in try inv.integer(2) },
        incrementCommand("decrby", arity: 3) { inv in
            let n = try inv.integer(2)
            guard n != Int.min else { throw CommandError("ERR decrement would overflow") }
            return -n
        },
    ]

    /// INCR, DECR, INCRBY and DECRBY: the value must be a 64-bit decimal integer; the TTL stays.
    static func incrementCommand(_ name: String, arity: Int, delta: @escaping @Sendable (Invocation) throws -> Int)
        -> CommandSpec
    {
        CommandSpec(name, arity: arity, flags: .write, keys: (1, 1, 1)) { inv in
            let by = try delta(inv)
            let (key, store) = (inv.bytes(1), inv.store)
            return try inv.run(near: [inv.arguments[1]]) { out, _ in
                let result = try store.update(key) { current -> (Mutation, Int) in
                    var value = 0
                    if let current {
                        guard let parsed = Invocation.parseInteger(current.value) else { throw CommandError.notInteger }
                        value = parsed
                    }
                    let (sum, overflow) = value.addingReportingOverflow(by)
                    guard !overflow else { throw CommandError.overflow }
                    return (.set(value: Array(String(sum).utf8), expiresAt: current?.expiresAt ?? 0), sum)
                }
                out.writeRESPInteger(result)
            }
        }
    }
}
