import NIOCore
import RESP
import StrataCollections
import StrataStore

/// One input of ZUNION, ZINTER, ZDIFF and ZINTERCARD: a sorted set, a set (every member scored
/// 1, as Redis counts it) or a missing key (empty).
enum ZAlgebraSource {
    case zset(SortedSetValue)
    case set(SetValue)
    case none

    /// Reads a slot, WRONGTYPE for anything but a sorted set or a set.
    init(_ slot: CollectionSlot) throws {
        switch slot.value {
        case nil: self = .none
        case .zset(let z): self = .zset(z)
        case .set(let s): self = .set(s)
        default: throw CommandError.wrongType
        }
    }

    /// How many members the source holds.
    var count: Int {
        switch self {
        case .zset(let z): z.count
        case .set(let s): s.count
        case .none: 0
        }
    }

    /// Every member with its score.
    var items: [ScoredMember] {
        switch self {
        case .zset(let z): z.entries
        case .set(let s): s.members.map { ScoredMember(member: $0, score: 1) }
        case .none: []
        }
    }

    /// The score of `member`, nil when absent.
    func score(of member: [UInt8]) -> Double? {
        switch self {
        case .zset(let z): z.score(of: member)
        case .set(let s): s.contains(member) ? 1 : nil
        case .none: nil
        }
    }
}

/// The options after the keys of ZUNION, ZINTER, ZDIFF, their STORE forms and ZINTERCARD.
struct ZAlgebraOptions: Sendable {
    enum Operation: Sendable { case union, inter, diff }
    enum Aggregate: Sendable { case sum, min, max }

    /// WEIGHTS, one per source (1 by default).
    var weights: [Double]
    /// AGGREGATE (SUM by default).
    var aggregate = Aggregate.sum
    /// WITHSCORES (the plain forms only).
    var withScores = false
    /// ZINTERCARD's LIMIT (0: none).
    var limit = 0

    /// Parses from argument `start` as Redis' `zunionInterDiffGenericCommand` does (WEIGHTS and
    /// AGGREGATE except for ZDIFF and ZINTERCARD, WITHSCORES for the plain forms, LIMIT for
    /// ZINTERCARD), with its errors.
    init(_ inv: Invocation, from start: Int, keys: Int, operation: Operation, store: Bool, cardinality: Bool) throws {
        weights = Array(repeating: 1, count: keys)
        var j = start
        while j < inv.arguments.count {
            let (option, remaining) = (inv.upper(j), inv.arguments.count - j)
            if operation != .diff && !cardinality && remaining >= keys + 1 && option == "WEIGHTS" {
                for i in 0..<keys {
                    weights[i] = try Commands.parseScore(inv.arguments[j + 1 + i], error: CommandError("ERR weight value is not a float"))
                }
                j += keys + 1
            } else if operation != .diff && !cardinality && remaining >= 2 && option == "AGGREGATE" {
                switch inv.upper(j + 1) {
                case "SUM": aggregate = .sum
                case "MIN": aggregate = .min
                case "MAX": aggregate = .max
                default: throw CommandError.syntax
                }
                j += 2
            } else if !store && !cardinality && option == "WITHSCORES" {
                withScores = true
                j += 1
            } else if cardinality && remaining >= 2 && option == "LIMIT" {
                guard let n = try? inv.integer(j + 1), n >= 0 else { throw CommandError("ERR LIMIT can't be negative") }
                limit = n
                j += 2
            } else {
                throw CommandError.syntax
            }
        }
    }

    /// Redis' `zunionInterAggregate`: a sum that comes out NaN (inf + -inf) is 0; MIN and MAX keep
    /// the current score when the comparison fails.
    func combine(_ target: inout Double, _ value: Double) {
        switch aggregate {
        case .sum:
            target += value
            if target.isNaN { target = 0 }
        case .min: target = value < target ? value : target
        case .max: target = value > target ? value : target
        }
    }
}

extension Commands {
    static let sortedSetAlgebra: [CommandSpec] = [
        zalgebraCommand("zunion", .union, store: false),
        zalgebraCommand("zinter", .inter, store: false),
        zalgebraCommand("zdiff", .diff, store: false),
        zalgebraCommand("zunionstore", .union, store: true),
        zalgebraCommand("zinterstore", .inter, store: true),
        zalgebraCommand("zdiffstore", .diff, store: true),
        zalgebraCommand("zintercard", .inter, store: false, cardinality: true),
    ]

    /// The number of source keys at argument `at`, with Redis' errors (checked before any key is read).
    static func zalgebraKeyCount(_ inv: Invocation, at: Int) throws -> Int {
        let numkeys = try inv.integer(at)
        guard numkeys >= 1 else { throw CommandError("ERR at least 1 input key is needed for '\(inv.name)' command") }
        guard numkeys <= inv.arguments.count - at - 1 else { throw CommandError.syntax }
        return numkeys
    }

    /// One of the algebra commands: `[destination] numkeys key... [options]`. As in Redis the
    /// sources' types are checked before the options are read, so WRONGTYPE answers first.
    static func zalgebraCommand(
        _ name: String, _ operation: ZAlgebraOptions.Operation, store: Bool, cardinality: Bool = false
    ) -> CommandSpec {
        let at = store ? 2 : 1
        let finder: @Sendable ([ByteBuffer]) -> [ByteBuffer] = { arguments in
            let sources = CommandSpec.numkeys(at: at)(arguments)
            return store && !sources.isEmpty ? [arguments[1]] + sources : sources
        }
        let flags: CommandFlags = store ? [.write, .oneNode] : .oneNode
        return CommandSpec(name, arity: store ? -4 : -3, flags: flags, keys: store ? (1, 1, 1) : (2, -1, 1), keyFinder: finder) { inv in
            let numkeys = try zalgebraKeyCount(inv, at: at)
            let sourceKeys = Array(inv.arguments[(at + 1)...(at + numkeys)])
            let options = Result {
                try ZAlgebraOptions(inv, from: at + 1 + numkeys, keys: numkeys, operation: operation, store: store, cardinality: cardinality)
            }
            let limits = inv.collectionLimits
            let keys = store ? [inv.arguments[1]] + sourceKeys : sourceKeys
            return try inv.collections(keys, write: store) { slots, out, version in
                let first = store ? 1 : 0
                let sources = try (first..<slots.count).map { try ZAlgebraSource(slots[$0]) }
                let parsed = try options.get()
                if cardinality { return out.writeRESPInteger(intersectionCount(sources, parsed)) }
                let result = combine(sources, parsed, operation).sorted {
                    $0.score < $1.score || ($0.score == $1.score && $0.member.lexicographicallyPrecedes($1.member))
                }
                guard store else { return writeScoredMembers(&out, result, withScores: parsed.withScores, version) }
                slots[0] = CollectionSlot(value: storedZset(result, limits: limits), expiresAt: 0)
                out.writeRESPInteger(result.count)
            }
        }
    }

    /// The sources' indices smallest first (Redis sorts them by size, which decides the order
    /// scores are summed in); equal sizes keep their argument order.
    static func bySize(_ sources: [ZAlgebraSource]) -> [Int] {
        sources.indices.sorted { (sources[$0].count, $0) < (sources[$1].count, $1) }
    }

    /// A source's score times its weight, a NaN product (inf * 0) counting as 0 as in Redis.
    static func weighted(_ score: Double, _ weight: Double) -> Double {
        let value = score * weight
        return value.isNaN ? 0 : value
    }

    /// The union, intersection or difference with its scores, in no particular order.
    static func combine(_ sources: [ZAlgebraSource], _ options: ZAlgebraOptions, _ operation: ZAlgebraOptions.Operation) -> [ScoredMember] {
        switch operation {
        case .union:
            var scores: [[UInt8]: Double] = [:]
            for i in bySize(sources) {
                for item in sources[i].items {
                    let value = weighted(item.score, options.weights[i])
                    if var current = scores[item.member] {
                        options.combine(&current, value)
                        scores[item.member] = current
                    } else {
                        scores[item.member] = value
                    }
                }
            }
            return scores.map { ScoredMember(member: $0.key, score: $0.value) }
        case .inter:
            var out: [ScoredMember] = []
            intersect(sources, options) { member -> Bool in
                out.append(member)
                return true
            }
            return out
        case .diff:
            let others = sources.dropFirst()
            return sources[0].items.filter { item in !others.contains { $0.score(of: item.member) != nil } }
        }
    }

    /// Calls `found` with each member of the intersection and its score until it returns false.
    static func intersect(_ sources: [ZAlgebraSource], _ options: ZAlgebraOptions, _ found: (ScoredMember) -> Bool) {
        guard sources.allSatisfy({ $0.count > 0 }) else { return }
        let order = bySize(sources)
        members: for item in sources[order[0]].items {
            var score = weighted(item.score, options.weights[order[0]])
            for i in order.dropFirst() {
                // Redis weighs a matched score without the NaN guard; the sum's own guard applies.
                guard let value = sources[i].score(of: item.member) else { continue members }
                options.combine(&score, value * options.weights[i])
            }
            if !found(ScoredMember(member: item.member, score: score)) { return }
        }
    }

    /// ZINTERCARD: the intersection's size, stopping at a non-zero LIMIT.
    static func intersectionCount(_ sources: [ZAlgebraSource], _ options: ZAlgebraOptions) -> Int {
        var count = 0
        intersect(sources, options) { _ in
            count += 1
            return options.limit == 0 || count < options.limit
        }
        return count
    }
}
