import NIOCore
import RESP
import StrataCollections
import StrataStore
import Synchronization

/// A parsed ZRANGE-family request: which interval, in which direction, and the LIMIT window.
struct ZRangeRequest: Sendable {
    enum Interval: Sendable {
        case rank(Int, Int)
        case score(ScoreBound, ScoreBound)
        case lex(LexBound, LexBound)
    }

    /// How a command fixes the interval's kind (ZRANGEBYSCORE) or leaves it to BYSCORE and BYLEX.
    enum Kind { case auto, rank, score, lex }

    /// The range asked for.
    var interval: Interval
    /// REV, or a ZREV* form.
    var reverse: Bool
    /// WITHSCORES.
    var withScores: Bool
    /// LIMIT's offset.
    var offset: Int
    /// LIMIT's count; negative: no limit.
    var limit: Int

    /// Reads Redis' `zrangeGenericCommand` arguments: the key at `keyAt`, the interval's two ends
    /// after it, then the options (WITHSCORES unless `store`, LIMIT, and REV, BYSCORE, BYLEX where
    /// the command leaves them open), with Redis' errors in its order.
    init(_ inv: Invocation, keyAt: Int, store: Bool, kind: Kind, reverse fixedReverse: Bool?) throws {
        var (kind, reverse, withScores, offset, limit) = (kind, fixedReverse, false, 0, -1)
        var j = keyAt + 3
        while j < inv.arguments.count {
            let option = inv.upper(j)
            if !store && option == "WITHSCORES" {
                withScores = true
            } else if option == "LIMIT" && inv.arguments.count - j - 1 >= 2 {
                offset = try inv.integer(j + 1)
                limit = try inv.integer(j + 2)
                j += 2
            } else if fixedReverse == nil && reverse == nil && option == "REV" {
                reverse = true
            } else if kind == .auto && option == "BYLEX" {
                kind = .lex
            } else if kind == .auto && option == "BYSCORE" {
                kind = .score
            } else {
                throw CommandError.syntax
            }
            j += 1
        }
        if kind == .auto { kind = .rank }
        if limit != -1 && kind == .rank {
            throw CommandError("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX")
        }
        if withScores && kind == .lex {
            throw CommandError("ERR syntax error, WITHSCORES not supported in combination with BYLEX")
        }
        let isReverse = reverse ?? false
        // A reverse interval by score or lex is given as max, min.
        let (lo, hi) = isReverse && kind != .rank ? (keyAt + 2, keyAt + 1) : (keyAt + 1, keyAt + 2)
        switch kind {
        case .score:
            let (min, max) = try Commands.scoreRange(inv, lo, hi)
            interval = .score(min, max)
        case .lex:
            let (min, max) = try Commands.lexRange(inv, lo, hi)
            interval = .lex(min, max)
        default:
            interval = .rank(try inv.integer(lo), try inv.integer(hi))
        }
        (self.reverse, self.withScores, self.offset, self.limit) = (isReverse, withScores, offset, limit)
    }

    /// The members the request selects from `zset`, in reply order.
    func select(_ zset: SortedSetValue) -> [ScoredMember] {
        let window = limit < 0 ? nil : limit
        switch interval {
        case .rank(let start, let stop): return zset.range(byRank: start, stop, reverse: reverse)
        case .score(let min, let max): return zset.range(byScore: min, max, reverse: reverse, offset: offset, limit: window)
        case .lex(let min, let max): return zset.range(byLex: min, max, reverse: reverse, offset: offset, limit: window)
        }
    }
}

extension Commands {
    static let sortedSetRanges: [CommandSpec] = [
        zrangeCommand("zrange", kind: .auto, reverse: nil),
        zrangeCommand("zrangebyscore", kind: .score, reverse: false),
        zrangeCommand("zrevrangebyscore", kind: .score, reverse: true),
        zrangeCommand("zrevrange", kind: .rank, reverse: true),
        zrangeCommand("zrangebylex", kind: .lex, reverse: false),
        zrangeCommand("zrevrangebylex", kind: .lex, reverse: true),

        CommandSpec("zrangestore", arity: -5, flags: [.write, .oneNode], keys: (1, 2, 1)) { inv in
            let request = try ZRangeRequest(inv, keyAt: 2, store: true, kind: .auto, reverse: nil)
            let limits = inv.collectionLimits
            return try inv.collections([inv.arguments[1], inv.arguments[2]], write: true) { slots, out, _ in
                let picked = try slots[1].zset().map(request.select) ?? []
                // Redis 7.0 picks the encoding by the count alone and converts on a long member.
                slots[0] = CollectionSlot(value: storedZset(picked, limits: limits, byLength: false), expiresAt: 0)
                out.writeRESPInteger(picked.count)
            }
        },

        zremrangeCommand("zremrangebyrank") { inv in
            let (start, stop) = (try inv.integer(2), try inv.integer(3))
            return { $0.removeRange(byRank: start, stop) }
        },
        zremrangeCommand("zremrangebyscore") { inv in
            let (min, max) = try scoreRange(inv, 2, 3)
            return { $0.removeRange(byScore: min, max) }
        },
        zremrangeCommand("zremrangebylex") { inv in
            let (min, max) = try lexRange(inv, 2, 3)
            return { $0.removeRange(byLex: min, max) }
        },

        zpopCommand("zpopmin", max: false),
        zpopCommand("zpopmax", max: true),
        bzpopCommand("bzpopmin", max: false),
        bzpopCommand("bzpopmax", max: true),
        zmpopCommand("zmpop", blocking: false),
        zmpopCommand("bzmpop", blocking: true),
    ]

    /// ZRANGE and its older forms, which fix the kind of interval or the direction.
    static func zrangeCommand(_ name: String, kind: ZRangeRequest.Kind, reverse: Bool?) -> CommandSpec {
        CommandSpec(name, arity: -4, keys: (1, 1, 1)) { inv in
            let request = try ZRangeRequest(inv, keyAt: 1, store: false, kind: kind, reverse: reverse)
            return try inv.collection(write: false) { slot, out, version in
                let picked = try slot.zset().map(request.select) ?? []
                writeScoredMembers(&out, picked, withScores: request.withScores, version)
            }
        }
    }

    /// A sorted set holding `members`, encoded for their number (and, `byLength`, the longest
    /// member) as Redis does for a stored result; nil when empty (the key is deleted).
    static func storedZset(_ members: [ScoredMember], limits: CollectionLimits, byLength: Bool = true) -> StoredValue? {
        guard !members.isEmpty else { return nil }
        let longest = byLength ? members.reduce(0) { Swift.max($0, $1.member.count) } : 0
        var zset = SortedSetValue(sizeHint: members.count, longestMember: longest, limits: limits)
        for m in members { _ = try? zset.add(m.member, score: m.score, limits: limits) }
        return .zset(zset)
    }

    /// ZREMRANGEBY*: `parse` reads the interval (its errors come before the key is looked at)
    /// and returns the removal, whose count is the reply.
    static func zremrangeCommand(
        _ name: String, _ parse: @escaping @Sendable (Invocation) throws -> @Sendable (inout SortedSetValue) -> Int
    ) -> CommandSpec {
        CommandSpec(name, arity: 4, flags: .write, keys: (1, 1, 1)) { inv in
            let remove = try parse(inv)
            return try inv.collection(write: true) { slot, out, _ in
                out.writeRESPInteger(try slot.withZset(create: { nil }, remove) ?? 0)
            }
        }
    }

    /// Pops up to `count` members from the low or high end.
    static func pop(_ zset: inout SortedSetValue, _ count: Int, max: Bool) -> [ScoredMember] {
        max ? zset.popMax(count: count) : zset.popMin(count: count)
    }

    /// ZPOPMIN and ZPOPMAX: without a count a flat [member, score]; with one, RESP3 nests the
    /// pairs (Redis 7's `use_nested_array`).
    static func zpopCommand(_ name: String, max: Bool) -> CommandSpec {
        CommandSpec(name, arity: -2, flags: .write, keys: (1, 1, 1)) { inv in
            guard inv.arguments.count <= 3 else { throw CommandError.syntax }
            var count = -1
            if inv.arguments.count == 3 {
                // Redis 7.0 gives this one text for a non-integer count too.
                guard let n = try? inv.integer(2), n >= 0 else { throw CommandError("ERR value is out of range, must be positive") }
                count = n
            }
            let given = count
            return try inv.collection(write: true) { slot, out, version in
                guard try slot.zset() != nil, given != 0 else { return out.writeRESPArrayHeader(0) }
                let popped = try slot.withZset(create: { nil }) { pop(&$0, Swift.max(given, 1), max: max) } ?? []
                let nested = version == .v3 && given != -1
                out.writeRESPArrayHeader(nested ? popped.count : popped.count * 2)
                for p in popped {
                    if nested { out.writeRESPArrayHeader(2) }
                    out.writeRESPBulk(p.member)
                    out.writeRESPDouble(p.score, version)
                }
            }
        }
    }

    /// The first of `keys` holding members, as Redis' blocking and multi-key pops look: a missing
    /// key is skipped, another type is WRONGTYPE (written as the reply, so a blocked client gets
    /// it on its `first` try); pops up to `count` and writes the reply with `write`. Returns
    /// whether it answered.
    static func popFirst(
        _ slots: inout CollectionSlots, _ keys: [[UInt8]], count: Int, max: Bool, first: Bool = true,
        _ out: inout ByteBuffer, _ write: (inout ByteBuffer, [UInt8], [ScoredMember]) -> Void
    ) -> Bool {
        for i in 0..<keys.count {
            guard slots[i].value != nil else { continue }
            guard case .zset = slots[i].value else {
                // A later try of a blocked client passes over a key that changed type.
                guard first else { continue }
                out.writeRESPError(CommandError.wrongType.message)
                return true
            }
            let popped = (try? slots[i].withZset(create: { nil }) { pop(&$0, count, max: max) }) ?? []
            write(&out, keys[i], popped)
            return true
        }
        return false
    }

    /// BZPOPMIN and BZPOPMAX: [key, member, score] from the first non-empty key, waiting for one.
    static func bzpopCommand(_ name: String, max: Bool) -> CommandSpec {
        // Redis 7.0 refuses BZPOPMIN and BZPOPMAX in scripts (BZMPOP it runs without blocking).
        CommandSpec(name, arity: -3, flags: [.write, .oneNode, .noScript], keys: (1, -2, 1)) { inv in
            let timeout = try inv.blockingTimeout(at: inv.arguments.count - 1)
            let keys = Array(inv.arguments[1..<(inv.arguments.count - 1)])
            let (keyBytes, firstTry) = (keys.map { Array($0.readableBytesView) }, FirstAttempt())
            return try inv.block(keys: keys, timeout: timeout, onTimeout: { out, version in out.writeRESPNullArray(version) }) {
                slots, out, version in
                popFirst(&slots, keyBytes, count: 1, max: max, first: firstTry.take(), &out) { out, key, popped in
                    out.writeRESPArrayHeader(1 + 2 * popped.count)
                    out.writeRESPBulk(key)
                    for p in popped {
                        out.writeRESPBulk(p.member)
                        out.writeRESPDouble(p.score, version)
                    }
                }
            }
        }
    }

    /// ZMPOP and BZMPOP: `[timeout] numkeys key... MIN|MAX [COUNT n]`, answering [key, [[member,
    /// score]...]] from the first non-empty key, or a null array.
    static func zmpopCommand(_ name: String, blocking: Bool) -> CommandSpec {
        let at = blocking ? 2 : 1
        return CommandSpec(name, arity: blocking ? -5 : -4, flags: [.write, .oneNode], keys: (at + 1, -2, 1), keyFinder: CommandSpec.numkeys(at: at)) { inv in
            guard let numkeys = try? inv.integer(at), numkeys >= 1 else { throw CommandError("ERR numkeys should be greater than 0") }
            // Checked in two steps so a huge count cannot overflow.
            guard numkeys < inv.arguments.count, at + 1 + numkeys < inv.arguments.count else { throw CommandError.syntax }
            let whereAt = at + 1 + numkeys
            let max: Bool
            switch inv.upper(whereAt) {
            case "MIN": max = false
            case "MAX": max = true
            default: throw CommandError.syntax
            }
            var count = -1
            var j = whereAt + 1
            while j < inv.arguments.count {
                guard count == -1, inv.upper(j) == "COUNT", j + 1 < inv.arguments.count else { throw CommandError.syntax }
                guard let n = try? inv.integer(j + 1), n >= 1 else { throw CommandError("ERR count should be greater than 0") }
                count = n
                j += 2
            }
            let (take, keys) = (Swift.max(count, 1), Array(inv.arguments[(at + 1)..<whereAt]))
            let (keyBytes, firstTry) = (keys.map { Array($0.readableBytesView) }, FirstAttempt())
            let attempt: @Sendable (inout CollectionSlots, inout ByteBuffer, RESPVersion) throws -> Bool = { slots, out, version in
                popFirst(&slots, keyBytes, count: take, max: max, first: firstTry.take(), &out) { out, key, popped in
                    out.writeRESPArrayHeader(2)
                    out.writeRESPBulk(key)
                    writeScoredPairs(&out, popped, version)
                }
            }
            guard blocking else {
                return try inv.collections(keys, write: true) { slots, out, version in
                    if try !attempt(&slots, &out, version) { out.writeRESPNullArray(version) }
                }
            }
            let timeout = try inv.blockingTimeout(at: 1)
            return try inv.block(keys: keys, timeout: timeout, onTimeout: { out, version in out.writeRESPNullArray(version) }, attempt: attempt)
        }
    }

    /// An array of [member, score] pairs in both protocols (ZMPOP's nested reply).
    static func writeScoredPairs(_ out: inout ByteBuffer, _ items: [ScoredMember], _ version: RESPVersion) {
        out.writeRESPArrayHeader(items.count)
        for item in items {
            out.writeRESPArrayHeader(2)
            out.writeRESPBulk(item.member)
            out.writeRESPDouble(item.score, version)
        }
    }
}
