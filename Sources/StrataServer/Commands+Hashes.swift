import NIOCore
import RESP
import StrataCollections
import StrataStore

extension Commands {
    static let hashes: [CommandSpec] = [
        hashSetCommand("hset"),
        hashSetCommand("hmset"),

        CommandSpec("hsetnx", arity: 4, flags: .write, keys: (1, 1, 1)) { inv in
            let (field, value, limits) = (inv.bytes(2), inv.bytes(3), inv.collectionLimits)
            return try inv.collection(write: true) { slot, out, _ in
                let added = try slot.withHash(create: true) { h in
                    h.contains(field) ? false : h.set(field, value, limits: limits)
                }
                out.writeRESPInteger(added == true ? 1 : 0)
            }
        },

        CommandSpec("hget", arity: 3, keys: (1, 1, 1)) { inv in
            let field = inv.bytes(2)
            return try inv.collection(write: false) { slot, out, version in
                if let value = try slot.hash()?.get(field) { out.writeRESPBulk(value) } else { out.writeRESPNull(version) }
            }
        },

        CommandSpec("hmget", arity: -3, keys: (1, 1, 1)) { inv in
            let fields = (2..<inv.arguments.count).map { inv.bytes($0) }
            return try inv.collection(write: false) { slot, out, version in
                let hash = try slot.hash()
                out.writeRESPArrayHeader(fields.count)
                for field in fields {
                    if let value = hash?.get(field) { out.writeRESPBulk(value) } else { out.writeRESPNull(version) }
                }
            }
        },

        CommandSpec("hgetall", arity: 2, keys: (1, 1, 1)) { inv in
            try inv.collection(write: false) { slot, out, version in
                let entries = try slot.hash()?.entries ?? []
                out.writeRESPMapHeader(entries.count, version)
                for (field, value) in entries {
                    out.writeRESPBulk(field)
                    out.writeRESPBulk(value)
                }
            }
        },

        CommandSpec("hkeys", arity: 2, keys: (1, 1, 1)) { inv in
            try inv.collection(write: false) { slot, out, _ in
                writeBulkArray(&out, try slot.hash()?.entries.map(\.field) ?? [])
            }
        },

        CommandSpec("hvals", arity: 2, keys: (1, 1, 1)) { inv in
            try inv.collection(write: false) { slot, out, _ in
                writeBulkArray(&out, try slot.hash()?.entries.map(\.value) ?? [])
            }
        },

        CommandSpec("hdel", arity: -3, flags: .write, keys: (1, 1, 1)) { inv in
            let fields = (2..<inv.arguments.count).map { inv.bytes($0) }
            return try inv.collection(write: true) { slot, out, _ in
                let removed = try slot.withHash(create: false) { h in fields.filter { h.remove($0) }.count }
                out.writeRESPInteger(removed ?? 0)
            }
        },

        CommandSpec("hexists", arity: 3, keys: (1, 1, 1)) { inv in
            let field = inv.bytes(2)
            return try inv.collection(write: false) { slot, out, _ in
                out.writeRESPInteger(try slot.hash()?.contains(field) == true ? 1 : 0)
            }
        },

        CommandSpec("hlen", arity: 2, keys: (1, 1, 1)) { inv in
            try inv.collection(write: false) { slot, out, _ in
                out.writeRESPInteger(try slot.hash()?.count ?? 0)
            }
        },

        CommandSpec("hstrlen", arity: 3, keys: (1, 1, 1)) { inv in
            let field = inv.bytes(2)
            return try inv.collection(write: false) { slot, out, _ in
                out.writeRESPInteger(try slot.hash()?.valueLength(field) ?? 0)
            }
        },

        CommandSpec("hincrby", arity: 4, flags: .write, keys: (1, 1, 1)) { inv in
            let (field, limits) = (inv.bytes(2), inv.collectionLimits)
            let increment = Int64(try inv.integer(3))
            return try inv.collection(write: true) { slot, out, _ in
                let sum = try slot.withHash(create: true) { h in
                    try h.incrementInteger(field, by: increment, limits: limits)
                }
                out.writeRESPInteger(Int(sum ?? 0))
            }
        },

        CommandSpec("hincrbyfloat", arity: 4, flags: .write, keys: (1, 1, 1)) { inv in
            let (field, limits) = (inv.bytes(2), inv.collectionLimits)
            guard let increment = LongDouble.parse(inv.arguments[3].readableBytesView) else { throw CommandError.notFloat }
            guard increment.isFinite else { throw CommandError("ERR value is NaN or Infinity") }
            return try inv.collection(write: true) { slot, out, _ in
                let text = try slot.withHash(create: true) { h in
                    try h.update(field, limits: limits) { old in
                        var value: LongDouble.Value = 0
                        if let old {
                            guard let parsed = LongDouble.parse(old) else { throw CommandError("ERR hash value is not a float") }
                            value = parsed
                        }
                        let sum = value + increment
                        guard sum.isFinite else { throw CommandError("ERR increment would produce NaN or Infinity") }
                        return LongDouble.format(sum)
                    }
                }
                out.writeRESPBulk(text ?? [])
            }
        },

        CommandSpec("hrandfield", arity: -2, keys: (1, 1, 1)) { inv in
            guard inv.arguments.count >= 3 else {
                return try inv.collection(write: false) { slot, out, version in
                    var rng = SystemRandomNumberGenerator()
                    if let pick = try slot.hash()?.randomEntries(count: 1, using: &rng).first {
                        out.writeRESPBulk(pick.field)
                    } else {
                        out.writeRESPNull(version)
                    }
                }
            }
            let count = try randomCount(inv, at: 2)
            guard inv.arguments.count == 3 || (inv.arguments.count == 4 && inv.upper(3) == "WITHVALUES") else {
                throw CommandError.syntax
            }
            let withValues = inv.arguments.count == 4
            // Redis halves the range with values: the reply holds two strings per pick.
            if withValues && (count < -Int.max / 2 || count > Int.max / 2) {
                throw CommandError("ERR value is out of range")
            }
            try checkRepeats(count)
            return try inv.collection(write: false) { slot, out, version in
                var rng = SystemRandomNumberGenerator()
                guard let hash = try slot.hash() else { return out.writeRESPArrayHeader(0) }
                // A count covering the hash answers it in its own order, as Redis does.
                let picks = count >= hash.count ? hash.entries : hash.randomEntries(count: count, using: &rng)
                out.writeRESPArrayHeader(withValues && version == .v2 ? picks.count * 2 : picks.count)
                for pick in picks {
                    if withValues && version == .v3 { out.writeRESPArrayHeader(2) }
                    out.writeRESPBulk(pick.field)
                    if withValues { out.writeRESPBulk(pick.value) }
                }
            }
        },

        CommandSpec("hscan", arity: -3, keys: (1, 1, 1)) { inv in
            let cursor = try scanCursor(inv.bytes(2))
            // Redis reads the options only once it has found the hash.
            let options = Result { try CollectionScanOptions(inv, from: 3) }
            return try inv.collection(write: false) { slot, out, _ in
                guard let hash = try slot.hash() else {
                    writeScanReply(&out, cursor: 0, keys: [])
                    return
                }
                let scanOptions = try options.get()
                let step = hash.scan(cursor: cursor, count: scanOptions.count)
                var items: [[UInt8]] = []
                for (field, value) in step.entries where scanOptions.keeps(field) {
                    items.append(field)
                    items.append(value)
                }
                writeScanReply(&out, cursor: step.cursor, keys: items)
            }
        },
    ]

    /// HSET (the count of new fields) and HMSET (OK): field value pairs, at least one.
    static func hashSetCommand(_ name: String) -> CommandSpec {
        CommandSpec(name, arity: -4, flags: .write, keys: (1, 1, 1)) { inv in
            guard inv.arguments.count % 2 == 0 else { throw CommandError.arity(name) }
            let pairs = stride(from: 2, to: inv.arguments.count, by: 2).map { (inv.bytes($0), inv.bytes($0 + 1)) }
            let limits = inv.collectionLimits
            return try inv.collection(write: true) { slot, out, _ in
                let added = try slot.withHash(create: true) { h in
                    pairs.reduce(0) { n, pair in h.set(pair.0, pair.1, limits: limits) ? n + 1 : n }
                }
                if name == "hmset" { out.writeStaticString("+OK\r\n") } else { out.writeRESPInteger(added ?? 0) }
            }
        }
    }

    static func writeBulkArray(_ out: inout ByteBuffer, _ items: [[UInt8]]) {
        out.writeRESPArrayHeader(items.count)
        for item in items { out.writeRESPBulk(item) }
    }

    /// The most picks a negative random count may ask for: Redis would stream them until the
    /// client's memory runs out; we build the reply in memory, so a huge count is refused.
    static let maximumRandomRepeats = 10_000_000

    /// HRANDFIELD's and SRANDMEMBER's count: an integer in -LONG_MAX...LONG_MAX (Redis' errors).
    static func randomCount(_ inv: Invocation, at i: Int) throws -> Int {
        let count = try inv.integer(i)
        guard count != Int.min else {
            throw CommandError("ERR value is out of range, value must between \(-Int.max) and \(Int.max)")
        }
        return count
    }

    /// Refuses a negative random count past `maximumRandomRepeats` (checked after the other
    /// arguments, so a syntax error still answers first).
    static func checkRepeats(_ count: Int) throws {
        guard count >= -maximumRandomRepeats else { throw CommandError("ERR value is out of range") }
    }

    /// A SCAN-family cursor as Redis' `parseScanCursorOrReply` reads it (C's `strtoul`): no
    /// leading space, an optional sign (a negative one wraps), decimal digits up to 2^64 - 1, and
    /// nothing after them; the text ends at a NUL byte, and an empty text is 0.
    static func scanCursor(_ bytes: [UInt8]) throws -> UInt64 {
        let invalid = CommandError("ERR invalid cursor")
        let text = bytes.prefix { $0 != 0 }
        if let first = text.first, first == 0x20 || (0x09...0x0d).contains(first) { throw invalid }
        guard !text.isEmpty else { return 0 }
        var digits = text[...]
        let negative = digits.first == UInt8(ascii: "-")
        if negative || digits.first == UInt8(ascii: "+") { digits = digits.dropFirst() }
        guard !digits.isEmpty else { throw invalid }
        var value: UInt64 = 0
        for byte in digits {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { throw invalid }
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.addingReportingOverflow(UInt64(byte - UInt8(ascii: "0")))
            guard !o1, !o2 else { throw invalid }
            value = s
        }
        return negative ? 0 &- value : value
    }
}

/// HSCAN's and SSCAN's options after the cursor, as Redis' `scanGenericCommand` reads them:
/// MATCH pattern and COUNT n (n >= 1), in any order, the last of each winning.
struct CollectionScanOptions: Sendable {
    var pattern: [UInt8]?
    var count = 10

    init(_ inv: Invocation, from start: Int) throws {
        var i = start
        while i < inv.arguments.count {
            guard i + 1 < inv.arguments.count else { throw CommandError.syntax }
            switch inv.upper(i) {
            case "COUNT":
                count = try inv.integer(i + 1)
                guard count >= 1 else { throw CommandError.syntax }
            case "MATCH":
                let p = inv.bytes(i + 1)
                pattern = p == [UInt8(ascii: "*")] ? nil : p  // "*" matches everything: no filter
            default:
                throw CommandError.syntax
            }
            i += 2
        }
    }

    /// Whether MATCH lets `item` through.
    func keeps(_ item: [UInt8]) -> Bool {
        pattern.map { GlobPattern.matches($0, item) } ?? true
    }
}
