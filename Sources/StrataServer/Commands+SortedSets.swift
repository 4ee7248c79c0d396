#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import RESP
import StrataCollections
import StrataStore

extension Commands {
    /// The sorted-set family: members and scores here, ranges and pops in
    /// `Commands+SortedSetRanges.swift`, union, intersection and difference in
    /// `Commands+SortedSetAlgebra.swift`.
    static let sortedSets: [CommandSpec] = sortedSetBasics + sortedSetRanges + sortedSetAlgebra

    static let sortedSetBasics: [CommandSpec] = [
        CommandSpec("zadd", arity: -4, flags: .write, keys: (1, 1, 1)) { inv in
            var (options, changed, i) = (ZAddOptions(), false, 2)
            options: while i < inv.arguments.count {
                switch inv.upper(i) {
                case "NX": options.nx = true
                case "XX": options.xx = true
                case "CH": changed = true
                case "INCR": options.incr = true
                case "GT": options.gt = true
                case "LT": options.lt = true
                default: break options
                }
                i += 1
            }
            let elements = inv.arguments.count - i
            guard elements > 0, elements % 2 == 0 else { throw CommandError.syntax }
            if options.nx && options.xx { throw CommandError("ERR XX and NX options at the same time are not compatible") }
            if (options.gt && options.nx) || (options.lt && options.nx) || (options.gt && options.lt) {
                throw CommandError("ERR GT, LT, and/or NX options at the same time are not compatible")
            }
            if options.incr && elements > 2 { throw CommandError("ERR INCR option supports a single increment-element pair") }
            // Every score is parsed before anything changes, so a bad one leaves the set alone.
            let pairs = try stride(from: i, to: inv.arguments.count, by: 2).map { j in
                ScoredMember(member: inv.bytes(j + 1), score: try parseScore(inv.arguments[j]))
            }
            return try zadd(&inv, pairs, options, changed: changed)
        },

        CommandSpec("zincrby", arity: 4, flags: .write, keys: (1, 1, 1)) { inv in
            let pair = ScoredMember(member: inv.bytes(3), score: try parseScore(inv.arguments[2]))
            return try zadd(&inv, [pair], ZAddOptions(incr: true), changed: false)
        },

        CommandSpec("zscore", arity: 3, keys: (1, 1, 1)) { inv in
            let member = inv.bytes(2)
            return try inv.collection(write: false) { slot, out, version in
                if let score = try slot.zset()?.score(of: member) { out.writeRESPDouble(score, version) } else { out.writeRESPNull(version) }
            }
        },

        CommandSpec("zmscore", arity: -3, keys: (1, 1, 1)) { inv in
            let members = (2..<inv.arguments.count).map { inv.bytes($0) }
            return try inv.collection(write: false) { slot, out, version in
                let zset = try slot.zset()
                out.writeRESPArrayHeader(members.count)
                for m in members {
                    if let score = zset?.score(of: m) { out.writeRESPDouble(score, version) } else { out.writeRESPNull(version) }
                }
            }
        },

        CommandSpec("zcard", arity: 2, keys: (1, 1, 1)) { inv in
            try inv.collection(write: false) { slot, out, _ in out.writeRESPInteger(try slot.zset()?.count ?? 0) }
        },

        CommandSpec("zcount", arity: 4, keys: (1, 1, 1)) { inv in
            let (min, max) = try scoreRange(inv, 2, 3)
            return try inv.collection(write: false) { slot, out, _ in
                out.writeRESPInteger(try slot.zset()?.count(byScore: min, max) ?? 0)
            }
        },

        CommandSpec("zlexcount", arity: 4, keys: (1, 1, 1)) { inv in
            let (min, max) = try lexRange(inv, 2, 3)
            return try inv.collection(write: false) { slot, out, _ in
                out.writeRESPInteger(try slot.zset()?.count(byLex: min, max) ?? 0)
            }
        },

        zrankCommand("zrank", reverse: false),
        zrankCommand("zrevrank", reverse: true),

        CommandSpec("zrem", arity: -3, flags: .write, keys: (1, 1, 1)) { inv in
            let members = (2..<inv.arguments.count).map { inv.bytes($0) }
            return try inv.collection(write: true) { slot, out, _ in
                let removed = try slot.withZset(create: { nil }) { z in members.filter { z.remove($0) }.count }
                out.writeRESPInteger(removed ?? 0)
            }
        },

        CommandSpec("zrandmember", arity: -2, keys: (1, 1, 1)) { inv in
            guard inv.arguments.count >= 3 else {
                return try inv.collection(write: false) { slot, out, version in
                    var rng = SystemRandomNumberGenerator()
                    if let pick = try slot.zset()?.randomMembers(count: 1, using: &rng).first {
                        out.writeRESPBulk(pick.member)
                    } else {
                        out.writeRESPNull(version)
                    }
                }
            }
            let count = try randomCount(inv, at: 2)
            guard inv.arguments.count == 3 || (inv.arguments.count == 4 && inv.upper(3) == "WITHSCORES") else {
                throw CommandError.syntax
            }
            let withScores = inv.arguments.count == 4
            // Redis halves the range with scores: the reply holds two values per pick.
            if withScores && (count < -Int.max / 2 || count > Int.max / 2) { throw CommandError("ERR value is out of range") }
            try checkRepeats(count)
            return try inv.collection(write: false) { slot, out, version in
                var rng = SystemRandomNumberGenerator()
                guard let zset = try slot.zset() else { return out.writeRESPArrayHeader(0) }
                // A count covering the set answers all of it from the highest down, as Redis'
                // zset iterator walks it.
                let picks = count >= zset.count ? zset.entries.reversed() : zset.randomMembers(count: count, using: &rng)
                writeScoredMembers(&out, picks, withScores: withScores, version)
            }
        },

        CommandSpec("zscan", arity: -3, keys: (1, 1, 1)) { inv in
            let cursor = try scanCursor(inv.bytes(2))
            // Redis reads the options only once it has found the sorted set.
            let options = Result { try CollectionScanOptions(inv, from: 3) }
            return try inv.collection(write: false) { slot, out, _ in
                guard let zset = try slot.zset() else { return writeScanReply(&out, cursor: 0, keys: []) }
                let scanOptions = try options.get()
                let step = zset.scan(cursor: cursor, count: scanOptions.count)
                var items: [[UInt8]] = []
                let listpack = zset.encodingName == "listpack"
                for pair in step.members where scanOptions.keeps(pair.member) {
                    items.append(pair.member)
                    // Scores travel as strings here in both protocols, as in Redis.
                    items.append(scanScoreText(pair.score, listpack: listpack))
                }
                writeScanReply(&out, cursor: step.cursor, keys: items)
            }
        },
    ]

    /// ZADD and ZINCRBY on parsed pairs: the count of new (with CH, also changed) members, or with
    /// INCR the new score (nil when skipped).
    static func zadd(_ inv: inout Invocation, _ pairs: [ScoredMember], _ options: ZAddOptions, changed: Bool) throws -> Outcome {
        let limits = inv.collectionLimits
        return try inv.collection(write: true) { slot, out, version in
            // XX on a missing key creates nothing. Redis 7.0 starts a new set as a listpack unless
            // the first member is too long (converting as it grows), so -0 given then reads as 0.
            let create = { options.xx ? nil : SortedSetValue(sizeHint: 1, longestMember: pairs[0].member.count, limits: limits) }
            let result = try slot.withZset(create: create) { z -> (added: Int, updated: Int, score: Double?) in
                var (added, updated, score) = (0, 0, Double?.none)
                for pair in pairs {
                    // A NaN result throws Redis' text, which the reply carries as an ERR.
                    let outcome = try z.add(pair.member, score: pair.score, options: options, limits: limits)
                    switch outcome {
                    case .added: added += 1
                    case .updated: updated += 1
                    case .unchanged, .skipped: break
                    }
                    score = outcome.score
                }
                return (added, updated, score)
            }
            guard options.incr else { return out.writeRESPInteger(changed ? (result?.added ?? 0) + (result?.updated ?? 0) : result?.added ?? 0) }
            if let score = result?.score { out.writeRESPDouble(score, version) } else { out.writeRESPNull(version) }
        }
    }

    /// A score as ZSCAN shows it in Redis 7.0: the text its encoding keeps. A listpack holds
    /// `d2string`'s form (an integral score within ±2^62 as an integer, so zero is "0"), a
    /// skiplist prints `%.17Lg` (which keeps -0).
    static func scanScoreText(_ score: Double, listpack: Bool) -> [UInt8] {
        let bound = Double(Int64.max / 2)
        if listpack && score >= -bound && score <= bound && score == score.rounded(.towardZero) {
            return Array(String(Int64(score)).utf8)
        }
        return ByteBuffer.redisDoubleText(score)
    }

    /// ZRANK and ZREVRANK, with Redis 7.2's WITHSCORE (a [rank, score] reply).
    static func zrankCommand(_ name: String, reverse: Bool) -> CommandSpec {
        CommandSpec(name, arity: -3, keys: (1, 1, 1)) { inv in
            guard inv.arguments.count <= 4 else { throw CommandError.arity(name) }
            guard inv.arguments.count == 3 || inv.upper(3) == "WITHSCORE" else { throw CommandError.syntax }
            let (member, withScore) = (inv.bytes(2), inv.arguments.count == 4)
            return try inv.collection(write: false) { slot, out, version in
                guard let zset = try slot.zset(), let rank = zset.rank(of: member, reverse: reverse) else {
                    return withScore ? out.writeRESPNullArray(version) : out.writeRESPNull(version)
                }
                guard withScore else { return out.writeRESPInteger(rank) }
                out.writeRESPArrayHeader(2)
                out.writeRESPInteger(rank)
                out.writeRESPDouble(zset.score(of: member) ?? 0, version)
            }
        }
    }

    /// Members with or without their scores: with scores, a flat member, score array in RESP2 and
    /// an array of [member, score] pairs in RESP3, as Redis 7 answers.
    static func writeScoredMembers(_ out: inout ByteBuffer, _ items: [ScoredMember], withScores: Bool, _ version: RESPVersion) {
        guard withScores else { return writeBulkArray(&out, items.map(\.member)) }
        out.writeRESPArrayHeader(version == .v3 ? items.count : items.count * 2)
        for item in items {
            if version == .v3 { out.writeRESPArrayHeader(2) }
            out.writeRESPBulk(item.member)
            out.writeRESPDouble(item.score, version)
        }
    }

    /// A score or weight argument as Redis' `string2d` reads it (C's `strtod`): the whole text,
    /// no leading space, no NaN, no overflow or underflow to zero.
    static func parseScore(_ argument: ByteBuffer, error: CommandError = .notFloat) throws -> Double {
        let bytes = Array(argument.readableBytesView)
        guard let first = bytes.first, !(first == 0x20 || (0x09...0x0d).contains(first)) else { throw error }
        let parsed = withCString(bytes) { start -> (Double, Int, Int32) in
            var end: UnsafeMutablePointer<CChar>? = start
            errno = 0
            let value = strtod(start, &end)
            return (value, end.map { $0 - start } ?? 0, errno)
        }
        let (value, consumed, status) = parsed
        guard consumed == bytes.count, !value.isNaN else { throw error }
        if status == ERANGE && (value.isInfinite || value == 0) { throw error }
        return value
    }

    /// Runs `body` on `bytes` as a NUL-terminated C string (where an embedded NUL ends it, as in C).
    static func withCString<R>(_ bytes: [UInt8], _ body: (UnsafeMutablePointer<CChar>) -> R) -> R {
        var text = [CChar](repeating: 0, count: bytes.count + 1)
        for (i, byte) in bytes.enumerated() { text[i] = CChar(bitPattern: byte) }
        return text.withUnsafeMutableBufferPointer { body($0.baseAddress!) }
    }

    /// One end of a score interval as Redis' `zslParseRange` reads it: `(` for an exclusive end,
    /// then C's `strtod` up to the text's end (leading space allowed, NaN refused).
    static func parseScoreBound(_ bytes: [UInt8]) -> ScoreBound? {
        let exclusive = bytes.first == UInt8(ascii: "(")
        let text = exclusive ? Array(bytes.dropFirst()) : bytes
        let parsed = withCString(text) { start -> Double? in
            var end: UnsafeMutablePointer<CChar>? = start
            let value = strtod(start, &end)
            guard let end, end.pointee == 0, !value.isNaN else { return nil }
            return value
        }
        return parsed.map { ScoreBound($0, exclusive: exclusive) }
    }

    /// One end of a lex interval as Redis' `zslParseLexRangeItem` reads it: `-`, `+`, `[x`, `(x`.
    static func parseLexBound(_ bytes: [UInt8]) -> LexBound? {
        switch bytes.first {
        case UInt8(ascii: "+"): bytes.count == 1 || bytes[1] == 0 ? .positiveInfinity : nil
        case UInt8(ascii: "-"): bytes.count == 1 || bytes[1] == 0 ? .negativeInfinity : nil
        case UInt8(ascii: "("): .exclusive(Array(bytes.dropFirst()))
        case UInt8(ascii: "["): .inclusive(Array(bytes.dropFirst()))
        default: nil
        }
    }

    /// The score interval at arguments `min` and `max`, with Redis' error.
    static func scoreRange(_ inv: Invocation, _ min: Int, _ max: Int) throws -> (ScoreBound, ScoreBound) {
        guard let lo = parseScoreBound(inv.bytes(min)), let hi = parseScoreBound(inv.bytes(max)) else {
            throw CommandError("ERR min or max is not a float")
        }
        return (lo, hi)
    }

    /// The lex interval at arguments `min` and `max`, with Redis' error.
    static func lexRange(_ inv: Invocation, _ min: Int, _ max: Int) throws -> (LexBound, LexBound) {
        guard let lo = parseLexBound(inv.bytes(min)), let hi = parseLexBound(inv.bytes(max)) else {
            throw CommandError("ERR min or max not valid string range item")
        }
        return (lo, hi)
    }
}
