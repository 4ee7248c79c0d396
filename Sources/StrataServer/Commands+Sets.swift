import NIOCore
import RESP
import StrataCollections
import StrataStore

extension Commands {
    static let sets: [CommandSpec] = [
        CommandSpec("sadd", arity: -3, flags: .write, keys: (1, 1, 1)) { inv in
            let (members, limits) = ((2..<inv.arguments.count).map { inv.bytes($0) }, inv.collectionLimits)
            return try inv.collection(write: true) { slot, out, _ in
                // A new set is encoded for all the members to come, as Redis 7.2's setTypeCreate.
                let create = { SetValue(sizeHint: members.count, firstMember: members[0], limits: limits) }
                let added = try slot.withSet(create: create) { s in members.filter { s.add($0, limits: limits) }.count }
                out.writeRESPInteger(added ?? 0)
            }
        },

        CommandSpec("srem", arity: -3, flags: .write, keys: (1, 1, 1)) { inv in
            let members = (2..<inv.arguments.count).map { inv.bytes($0) }
            return try inv.collection(write: true) { slot, out, _ in
                let removed = try slot.withSet(create: { nil }) { s in members.filter { s.remove($0) }.count }
                out.writeRESPInteger(removed ?? 0)
            }
        },

        CommandSpec("smembers", arity: 2, keys: (1, 1, 1)) { inv in
            try inv.collection(write: false) { slot, out, version in
                writeSetReply(&out, try slot.set()?.members ?? [], version)
            }
        },

        CommandSpec("sismember", arity: 3, keys: (1, 1, 1)) { inv in
            let member = inv.bytes(2)
            return try inv.collection(write: false) { slot, out, _ in
                out.writeRESPInteger(try slot.set()?.contains(member) == true ? 1 : 0)
            }
        },

        CommandSpec("smismember", arity: -3, keys: (1, 1, 1)) { inv in
            let members = (2..<inv.arguments.count).map { inv.bytes($0) }
            return try inv.collection(write: false) { slot, out, _ in
                let set = try slot.set()
                out.writeRESPArrayHeader(members.count)
                for m in members { out.writeRESPInteger(set?.contains(m) == true ? 1 : 0) }
            }
        },

        CommandSpec("scard", arity: 2, keys: (1, 1, 1)) { inv in
            try inv.collection(write: false) { slot, out, _ in
                out.writeRESPInteger(try slot.set()?.count ?? 0)
            }
        },

        CommandSpec("spop", arity: -2, flags: .write, keys: (1, 1, 1)) { inv in
            guard inv.arguments.count <= 3 else { throw CommandError.syntax }
            guard inv.arguments.count == 3 else {
                return try inv.collection(write: true) { slot, out, version in
                    var rng = SystemRandomNumberGenerator()
                    let popped = try slot.withSet(create: { nil }) { s in s.popRandom(count: 1, using: &rng) } ?? []
                    if let member = popped.first { out.writeRESPBulk(member) } else { out.writeRESPNull(version) }
                }
            }
            guard let count = try? inv.integer(2), count >= 0 else {
                throw CommandError("ERR value is out of range, must be positive")
            }
            return try inv.collection(write: true) { slot, out, version in
                var rng = SystemRandomNumberGenerator()
                let popped = try slot.withSet(create: { nil }) { s -> [[UInt8]] in
                    // Popping everything answers the set in its own order, as Redis does.
                    guard count < s.count else {
                        defer { s = SetValue() }
                        return s.members
                    }
                    return s.popRandom(count: count, using: &rng)
                }
                writeSetReply(&out, popped ?? [], version)
            }
        },

        CommandSpec("srandmember", arity: -2, keys: (1, 1, 1)) { inv in
            guard inv.arguments.count <= 3 else { throw CommandError.syntax }
            guard inv.arguments.count == 3 else {
                return try inv.collection(write: false) { slot, out, version in
                    var rng = SystemRandomNumberGenerator()
                    if let member = try slot.set()?.randomMembers(count: 1, using: &rng).first {
                        out.writeRESPBulk(member)
                    } else {
                        out.writeRESPNull(version)
                    }
                }
            }
            let count = try randomCount(inv, at: 2)
            try checkRepeats(count)
            return try inv.collection(write: false) { slot, out, _ in
                var rng = SystemRandomNumberGenerator()
                guard let set = try slot.set() else { return writeBulkArray(&out, []) }
                // A count covering the set answers it in its own order, as Redis does.
                writeBulkArray(&out, count >= set.count ? set.members : set.randomMembers(count: count, using: &rng))
            }
        },

        CommandSpec("smove", arity: 4, flags: [.write, .oneNode], keys: (1, 2, 1)) { inv in
            let (member, limits) = (inv.bytes(3), inv.collectionLimits)
            return try inv.collections([inv.arguments[1], inv.arguments[2]], write: true) { slots, out, _ in
                // As Redis: a missing source answers 0 before the destination's type is checked.
                guard let source = try slots[0].set() else {
                    out.writeRESPInteger(0)
                    return
                }
                _ = try slots[1].set()
                if slots.position[0] == slots.position[1] {
                    out.writeRESPInteger(source.contains(member) ? 1 : 0)
                    return
                }
                guard try slots[0].withSet(create: { nil }, { $0.remove(member) }) == true else {
                    out.writeRESPInteger(0)
                    return
                }
                _ = try slots[1].withSet(create: { SetValue(sizeHint: 1, firstMember: member, limits: limits) }) { s in
                    s.add(member, limits: limits)
                }
                out.writeRESPInteger(1)
            }
        },

        setAlgebraCommand("sinter", store: false, SetValue.intersection),
        setAlgebraCommand("sunion", store: false, SetValue.union),
        setAlgebraCommand("sdiff", store: false, SetValue.difference),
        setAlgebraCommand("sinterstore", store: true, SetValue.intersection),
        setAlgebraCommand("sunionstore", store: true, SetValue.union),
        setAlgebraCommand("sdiffstore", store: true, SetValue.difference),

        CommandSpec("sintercard", arity: -3, flags: .oneNode, keys: (2, -1, 1), keyFinder: CommandSpec.numkeys(at: 1)) { inv in
            let numkeysError = CommandError("ERR numkeys should be greater than 0")
            guard let numkeys = try? inv.integer(1), numkeys >= 1 else { throw numkeysError }
            guard numkeys <= inv.arguments.count - 2 else {
                throw CommandError("ERR Number of keys can't be greater than number of args")
            }
            var limit = 0
            var i = 2 + numkeys
            while i < inv.arguments.count {
                guard inv.upper(i) == "LIMIT", i + 1 < inv.arguments.count else { throw CommandError.syntax }
                guard let n = try? inv.integer(i + 1), n >= 0 else { throw CommandError("ERR LIMIT can't be negative") }
                limit = n
                i += 2
            }
            let keys = Array(inv.arguments[2..<(2 + numkeys)])
            let cap = limit
            return try inv.collections(keys, write: false) { slots, out, _ in
                let sets = try (0..<slots.count).map { try slots[$0].set() ?? SetValue() }
                out.writeRESPInteger(SetValue.intersectionCount(sets, limit: cap))
            }
        },

        CommandSpec("sscan", arity: -3, keys: (1, 1, 1)) { inv in
            let cursor = try scanCursor(inv.bytes(2))
            // Redis reads the options only once it has found the set.
            let options = Result { try CollectionScanOptions(inv, from: 3) }
            return try inv.collection(write: false) { slot, out, _ in
                guard let set = try slot.set() else {
                    writeScanReply(&out, cursor: 0, keys: [])
                    return
                }
                let scanOptions = try options.get()
                let step = set.scan(cursor: cursor, count: scanOptions.count)
                writeScanReply(&out, cursor: step.cursor, keys: step.members.filter(scanOptions.keeps))
            }
        },
    ]

    /// SINTER, SUNION, SDIFF and their STORE forms. Every source must be a set or missing (an
    /// empty set); a STORE form replaces its destination whatever it held, deleting it when the
    /// result is empty, and answers the result's size.
    static func setAlgebraCommand(
        _ name: String, store: Bool, _ operation: @escaping @Sendable ([SetValue]) -> [[UInt8]]
    ) -> CommandSpec {
        let first = store ? 2 : 1
        let flags: CommandFlags = store ? [.write, .oneNode] : .oneNode
        return CommandSpec(name, arity: store ? -3 : -2, flags: flags, keys: (1, -1, 1)) { inv in
            let limits = inv.collectionLimits
            let keys = Array(inv.arguments[1...])
            return try inv.collections(keys, write: store) { slots, out, version in
                let sources = try (first - 1..<slots.count).map { try slots[$0].set() }
                // A missing key is an empty set.
                let members = operation(sources.map { $0 ?? SetValue() })
                // SUNION and SDIFF build their result as a set, as Redis does, so an all-integer
                // result comes out sorted; SINTER answers in the smallest set's order.
                let result = name == "sinter" ? nil : SetValue(members: members, limits: limits)
                if store {
                    slots[0] = CollectionSlot(value: result.flatMap { $0.isEmpty ? nil : .set($0) }, expiresAt: 0)
                    out.writeRESPInteger(members.count)
                } else {
                    writeSetReply(&out, result?.members ?? members, version)
                }
            }
        }
    }

    /// A set reply: `~n` in RESP3, an array in RESP2.
    static func writeSetReply(_ out: inout ByteBuffer, _ members: [[UInt8]], _ version: RESPVersion) {
        if version == .v3 {
            out.writeInteger(UInt8(ascii: "~"))
            out.writeDecimal(members.count)
            out.writeStaticString("\r\n")
        } else {
            out.writeRESPArrayHeader(members.count)
        }
        for m in members { out.writeRESPBulk(m) }
    }
}
