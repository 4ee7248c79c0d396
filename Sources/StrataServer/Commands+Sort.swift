import NIOCore
import RESP
import StrataCollections
import StrataStore

extension Commands {
    /// SORT and SORT_RO on lists, sets and sorted sets, with BY and GET patterns (`*` for the
    /// element, `->field` for a hash field, `#` for the element itself), LIMIT, ASC/DESC, ALPHA
    /// and STORE, as Redis 7.0. In a cluster, BY and GET patterns that read other keys are
    /// refused as Redis Cluster refuses them: those keys may live on other nodes.
    static let sort: [CommandSpec] = [
        sortCommand("sort", readOnly: false),
        sortCommand("sort_ro", readOnly: true),
    ]

    struct SortRequest: Sendable {
        var by: [UInt8]?
        var gets: [[UInt8]] = []
        var offset = 0
        var count = -1
        var limited = false
        var descending = false
        var alpha = false
        var store: [UInt8]?

        /// BY with no `*`: keep the stored order (Redis' "nosort").
        var dontSort: Bool { by.map { !$0.contains(UInt8(ascii: "*")) } ?? false }
    }

    static func sortCommand(_ name: String, readOnly: Bool) -> CommandSpec {
        let flags: CommandFlags = readOnly ? [] : [.write, .oneNode]
        return CommandSpec(name, arity: -2, flags: flags, keys: (1, 1, 1), keyFinder: readOnly ? nil : CommandSpec.keyAndOptionKeys(["STORE"])) { inv in
            var request = SortRequest()
            var i = 2
            while i < inv.arguments.count {
                let more = inv.arguments.count - i - 1
                switch inv.upper(i) {
                case "ASC": request.descending = false
                case "DESC": request.descending = true
                case "ALPHA": request.alpha = true
                case "LIMIT" where more >= 2:
                    request.offset = try inv.integer(i + 1)
                    request.count = try inv.integer(i + 2)
                    request.limited = true
                    i += 2
                case "STORE" where more >= 1 && !readOnly:
                    request.store = inv.bytes(i + 1)
                    i += 1
                case "BY" where more >= 1:
                    request.by = inv.bytes(i + 1)
                    if inv.server.cluster != nil && !request.dontSort {
                        throw CommandError("ERR BY option of SORT denied in Cluster mode when keys formed by the pattern may be in different slots.")
                    }
                    i += 1
                case "GET" where more >= 1:
                    let pattern = inv.bytes(i + 1)
                    if inv.server.cluster != nil && pattern != [UInt8(ascii: "#")] {
                        throw CommandError("ERR GET option of SORT denied in Cluster mode when keys formed by the pattern may be in different slots.")
                    }
                    request.gets.append(pattern)
                    i += 1
                default:
                    throw CommandError.syntax
                }
                i += 1
            }
            let (key, store, limits, finalRequest) = (inv.bytes(1), inv.store, inv.collectionLimits, request)
            return try inv.offload { out, version in
                let result = try runSort(key, finalRequest, store: store)
                guard let destination = finalRequest.store else {
                    out.writeRESPArrayHeader(result.count)
                    for item in result {
                        if let item { out.writeRESPBulk(item) } else { out.writeRESPNull(version) }
                    }
                    return
                }
                var list = ListValue()
                for item in result { list.push(item ?? [], front: false, limits: limits) }
                try store.updateAll([destination]) { entries -> ([Mutation], Void) in
                    if list.isEmpty { return ([entries[0] == nil ? .none : .delete], ()) }
                    return ([.set(value: list.serialize(), expiresAt: 0, kind: .list)], ())
                }
                out.writeRESPInteger(result.count)
            }
        }
    }

    /// The sorted (and LIMITed) elements of `key`, or what the GET patterns give for each.
    static func runSort(_ key: [UInt8], _ request: SortRequest, store: TieredStore) throws -> [[UInt8]?] {
        let entry = store.entry(key)
        var elements: [[UInt8]]
        var isSortedSet = false
        switch try entry.map({ try StoredValue($0) }) {
        case nil: elements = []
        case .list(let list): elements = list.elements
        case .set(let set): elements = set.members
        case .zset(let zset):
            elements = zset.entries.map(\.member)
            isSortedSet = true
        default: throw CommandError.wrongType
        }
        var dontSort = request.dontSort
        var alpha = request.alpha
        // A set has no order of its own: with nosort and STORE, Redis sorts it anyway, by bytes.
        if dontSort, entry?.kind == .set, request.store != nil {
            dontSort = false
            alpha = true
        }
        if dontSort && isSortedSet && request.descending { elements.reverse() }
        if !dontSort {
            var keyed: [(element: [UInt8], score: Double, text: [UInt8]?)] = []
            keyed.reserveCapacity(elements.count)
            for element in elements {
                let weight = request.by.flatMap { lookup($0, element, store: store) } ?? (request.by == nil ? element : nil)
                if alpha {
                    keyed.append((element, 0, weight))
                } else {
                    let score = try weight.map(sortScore) ?? 0
                    keyed.append((element, score, nil))
                }
            }
            let byPattern = request.by != nil
            let descending = request.descending
            keyed.sort { a, b in
                let order: Int
                if alpha {
                    switch (a.text, b.text) {
                    case (nil, nil): order = byPattern ? 0 : compare(a.element, b.element)
                    case (nil, _): order = -1
                    case (_, nil): order = 1
                    case (let x?, let y?): order = compare(x, y)
                    }
                } else if a.score != b.score {
                    order = a.score < b.score ? -1 : 1
                } else {
                    order = compare(a.element, b.element)
                }
                return descending ? order > 0 : order < 0
            }
            elements = keyed.map(\.element)
        }
        // LIMIT offset count: a negative count is everything from the offset.
        if request.limited {
            let start = max(0, request.offset)
            if start >= elements.count {
                elements = []
            } else {
                let end = request.count < 0 ? elements.count : min(elements.count, start + request.count)
                elements = Array(elements[start..<max(start, end)])
            }
        }
        guard !request.gets.isEmpty else { return elements }
        var out: [[UInt8]?] = []
        out.reserveCapacity(elements.count * request.gets.count)
        for element in elements {
            for pattern in request.gets { out.append(pattern == [UInt8(ascii: "#")] ? element : lookup(pattern, element, store: store)) }
        }
        return out
    }

    /// A weight read as C's strtod reads it for SORT: leading spaces skipped, an empty text 0,
    /// anything left over, NaN or out of range an error.
    static func sortScore(_ weight: [UInt8]) throws -> Double {
        let text = String(decoding: weight.drop { $0 == 0x20 || (0x09...0x0D).contains($0) }, as: UTF8.self)
        if text.isEmpty { return 0 }
        guard let value = Double(text), !value.isNaN, value.isFinite || text.lowercased().contains("inf") else {
            throw CommandError("ERR One or more scores can't be converted into double")
        }
        return value
    }

    private static func compare(_ a: [UInt8], _ b: [UInt8]) -> Int {
        a == b ? 0 : (a.lexicographicallyPrecedes(b) ? -1 : 1)
    }

    /// What a BY or GET pattern names for `element`: the first `*` replaced by it, and a
    /// `->field` suffix (after the `*`) reading that field of a hash; nil when it is missing or
    /// of another type.
    static func lookup(_ pattern: [UInt8], _ element: [UInt8], store: TieredStore) -> [UInt8]? {
        guard let star = pattern.firstIndex(of: UInt8(ascii: "*")) else { return nil }
        var field: [UInt8]?
        var keyPattern = pattern
        if let arrow = findArrow(pattern, after: star), arrow + 2 < pattern.count {
            field = Array(pattern[(arrow + 2)...])
            keyPattern = Array(pattern[..<arrow])
        }
        let key = Array(keyPattern[..<star]) + element + Array(keyPattern[(star + 1)...])
        guard let entry = store.entry(key) else { return nil }
        if let field {
            guard entry.kind == .hash, case .hash(let hash)? = try? StoredValue(entry) else { return nil }
            return hash.get(field)
        }
        return entry.kind == .string ? entry.value : nil
    }

    /// The first `->` after position `start`, as Redis' `strstr(p + 1, "->")` finds it.
    private static func findArrow(_ pattern: [UInt8], after start: Int) -> Int? {
        var i = start + 1
        while i + 1 < pattern.count {
            if pattern[i] == UInt8(ascii: "-") && pattern[i + 1] == UInt8(ascii: ">") { return i }
            i += 1
        }
        return nil
    }
}
