import NIOCore
import RESP
import StrataCollections
import StrataStore
import Synchronization

extension Commands {
    static let lists: [CommandSpec] = [
        pushCommand("lpush", front: true, onlyExisting: false),
        pushCommand("rpush", front: false, onlyExisting: false),
        pushCommand("lpushx", front: true, onlyExisting: true),
        pushCommand("rpushx", front: false, onlyExisting: true),
        popCommand("lpop", front: true),
        popCommand("rpop", front: false),

        CommandSpec("llen", arity: 2, keys: (1, 1, 1)) { inv in
            try inv.collection(write: false) { slot, out, _ in
                out.writeRESPInteger(try slot.list()?.count ?? 0)
            }
        },

        CommandSpec("lrange", arity: 4, keys: (1, 1, 1)) { inv in
            let (start, stop) = (try inv.integer(2), try inv.integer(3))
            return try inv.collection(write: false) { slot, out, _ in
                writeBulkArray(&out, try slot.list()?.range(start, stop) ?? [])
            }
        },

        // LINDEX and LSET read their index only once they have found the list, as Redis does.
        CommandSpec("lindex", arity: 3, keys: (1, 1, 1)) { inv in
            let index = Result { try inv.integer(2) }
            return try inv.collection(write: false) { slot, out, version in
                guard let list = try slot.list() else { return out.writeRESPNull(version) }
                if let element = list.element(at: try index.get()) { out.writeRESPBulk(element) } else { out.writeRESPNull(version) }
            }
        },

        CommandSpec("lset", arity: 4, flags: .write, keys: (1, 1, 1)) { inv in
            let (index, element, limits) = (Result { try inv.integer(2) }, inv.bytes(3), inv.collectionLimits)
            return try inv.collection(write: true) { slot, out, _ in
                let done = try slot.withList(create: false) { l in l.set(at: try index.get(), to: element, limits: limits) }
                guard let done else { throw CommandError("ERR no such key") }
                guard done else { throw CommandError("ERR index out of range") }
                out.writeStaticString("+OK\r\n")
            }
        },

        CommandSpec("lrem", arity: 4, flags: .write, keys: (1, 1, 1)) { inv in
            let (count, element, limits) = (try inv.integer(2), inv.bytes(3), inv.collectionLimits)
            return try inv.collection(write: true) { slot, out, _ in
                let removed = try slot.withList(create: false) { l in l.remove(element, count: count, limits: limits) }
                out.writeRESPInteger(removed ?? 0)
            }
        },

        CommandSpec("ltrim", arity: 4, flags: .write, keys: (1, 1, 1)) { inv in
            let (start, stop, limits) = (try inv.integer(2), try inv.integer(3), inv.collectionLimits)
            return try inv.collection(write: true) { slot, out, _ in
                _ = try slot.withList(create: false) { l in l.trim(start, stop, limits: limits) }
                out.writeStaticString("+OK\r\n")
            }
        },

        CommandSpec("linsert", arity: 5, flags: .write, keys: (1, 1, 1)) { inv in
            let before: Bool
            switch inv.upper(2) {
            case "BEFORE": before = true
            case "AFTER": before = false
            default: throw CommandError.syntax
            }
            let (pivot, element, limits) = (inv.bytes(3), inv.bytes(4), inv.collectionLimits)
            return try inv.collection(write: true) { slot, out, _ in
                let length = try slot.withList(create: false) { l in
                    l.insert(element, before: before, pivot: pivot, limits: limits) ? l.count : -1
                }
                out.writeRESPInteger(length ?? 0)
            }
        },

        CommandSpec("lpos", arity: -3, keys: (1, 1, 1)) { inv in
            let element = inv.bytes(2)
            let options = try PositionOptions(inv, from: 3)
            return try inv.collection(write: false) { slot, out, version in
                let positions = try slot.list()?.positions(
                    of: element, rank: options.rank, count: options.count ?? 1, maxLength: options.maxLength) ?? []
                guard options.count != nil else {
                    if let first = positions.first { out.writeRESPInteger(first) } else { out.writeRESPNull(version) }
                    return
                }
                out.writeRESPArrayHeader(positions.count)
                for p in positions { out.writeRESPInteger(p) }
            }
        },

        CommandSpec("lmove", arity: 5, flags: [.write, .oneNode], keys: (1, 2, 1)) { inv in
            let (from, to) = (try listSide(inv, 3), try listSide(inv, 4))
            return try moveCommand(&inv, from: from, to: to)
        },

        CommandSpec("rpoplpush", arity: 3, flags: [.write, .oneNode], keys: (1, 2, 1)) { inv in
            try moveCommand(&inv, from: false, to: true)
        },

        CommandSpec("lmpop", arity: -4, flags: [.write, .oneNode], keys: (2, -2, 1), keyFinder: CommandSpec.numkeys(at: 1)) { inv in
            let (keys, front, count) = try multiPopArguments(inv, numkeysAt: 1)
            let (names, limits) = (keys.map { Array($0.readableBytesView) }, inv.collectionLimits)
            return try inv.collections(keys, write: true) { slots, out, version in
                guard let (i, popped) = try popFirst(&slots, count: count, front: front, limits: limits) else {
                    return out.writeRESPNullArray(version)
                }
                writeKeyAndElements(&out, names[i], popped)
            }
        },

        // The blocking forms but BLMPOP are refused in scripts (Redis 7.0's `noscript`); in MULTI they do not wait.
        blockingPopCommand("blpop", front: true),
        blockingPopCommand("brpop", front: false),

        CommandSpec("blmove", arity: 6, flags: [.write, .oneNode, .noScript], keys: (1, 2, 1)) { inv in
            let (from, to) = (try listSide(inv, 3), try listSide(inv, 4))
            return try blockingMoveCommand(&inv, from: from, to: to, timeoutAt: 5)
        },

        CommandSpec("brpoplpush", arity: 4, flags: [.write, .oneNode, .noScript], keys: (1, 2, 1)) { inv in
            try blockingMoveCommand(&inv, from: false, to: true, timeoutAt: 3)
        },

        CommandSpec("blmpop", arity: -5, flags: [.write, .oneNode], keys: (3, -2, 1), keyFinder: CommandSpec.numkeys(at: 2)) { inv in
            let (keys, front, count) = try multiPopArguments(inv, numkeysAt: 2)
            let timeout = try inv.blockingTimeout(at: 1)
            let (names, settings) = (keys.map { Array($0.readableBytesView) }, inv.server.settings)
            let first = FirstAttempt()
            return try inv.block(keys: keys, timeout: timeout, onTimeout: { out, version in out.writeRESPNullArray(version) }) {
                slots, out, _ in
                let limits = settings.collectionLimits
                guard let (i, popped) = try popFirst(&slots, count: count, front: front, limits: limits, skippingOtherTypes: !first.take())
                else { return false }
                writeKeyAndElements(&out, names[i], popped)
                return true
            }
        },
    ]

    /// LPUSH, RPUSH and their X forms (which push only onto an existing list): the list's length
    /// after the pushes, 0 when an X form found no list.
    static func pushCommand(_ name: String, front: Bool, onlyExisting: Bool) -> CommandSpec {
        CommandSpec(name, arity: -3, flags: .write, keys: (1, 1, 1)) { inv in
            let (elements, limits) = ((2..<inv.arguments.count).map { inv.bytes($0) }, inv.collectionLimits)
            return try inv.collection(write: true) { slot, out, _ in
                let length = try slot.withList(create: !onlyExisting) { l in
                    for element in elements { l.push(element, front: front, limits: limits) }
                    return l.count
                }
                out.writeRESPInteger(length ?? 0)
            }
        }
    }

    /// LPOP and RPOP: one element (a bulk or null) or, with a count, an array of up to that many
    /// (a null array for a missing key, as Redis answers before looking at the count).
    static func popCommand(_ name: String, front: Bool) -> CommandSpec {
        CommandSpec(name, arity: -2, flags: .write, keys: (1, 1, 1)) { inv in
            guard inv.arguments.count <= 3 else { throw CommandError.arity(name) }
            let limits = inv.collectionLimits
            guard inv.arguments.count == 3 else {
                return try inv.collection(write: true) { slot, out, version in
                    let popped = try slot.withList(create: false) { l in l.pop(front: front, limits: limits) }
                    if let element = popped ?? nil { out.writeRESPBulk(element) } else { out.writeRESPNull(version) }
                }
            }
            guard let count = try? inv.integer(2), count >= 0 else {
                throw CommandError("ERR value is out of range, must be positive")
            }
            return try inv.collection(write: true) { slot, out, version in
                guard let popped = try slot.withList(create: false, { l in pop(&l, count: count, front: front, limits: limits) }) else {
                    return out.writeRESPNullArray(version)
                }
                writeBulkArray(&out, popped)
            }
        }
    }

    /// Pops up to `count` elements from one end of `list`, in the order they come off.
    static func pop(_ list: inout ListValue, count: Int, front: Bool, limits: CollectionLimits) -> [[UInt8]] {
        var popped: [[UInt8]] = []
        popped.reserveCapacity(min(count, list.count))
        while popped.count < count, let element = list.pop(front: front, limits: limits) { popped.append(element) }
        return popped
    }

    /// LEFT (the head: true) or RIGHT (false) at argument `i`, else Redis' syntax error.
    static func listSide(_ inv: Invocation, _ i: Int) throws -> Bool {
        switch inv.upper(i) {
        case "LEFT": return true
        case "RIGHT": return false
        default: throw CommandError.syntax
        }
    }

    /// Pops up to `count` elements from the first of `slots` holding a list, in key order (keys
    /// that do not exist are skipped; one of another type before it is WRONGTYPE, as Redis
    /// walks them); nil when no key holds a list.
    /// With `skippingOtherTypes`, a key of another type is passed over like a missing one.
    static func popFirst(
        _ slots: inout CollectionSlots, count: Int, front: Bool, limits: CollectionLimits, skippingOtherTypes: Bool = false
    ) throws -> (index: Int, elements: [[UInt8]])? {
        for i in 0..<slots.count where try holdsList(slots[i], skippingOtherTypes) {
            // Through `unique` rather than the subscript, so the list is changed in place, not copied.
            let popped = try slots.unique[slots.position[i]].withList(create: false) { l in
                pop(&l, count: count, front: front, limits: limits)
            }
            return (i, popped ?? [])
        }
        return nil
    }

    /// Whether `slot` holds a list; a key of another type is WRONGTYPE, or with `skippingOtherTypes`
    /// just not a list.
    static func holdsList(_ slot: CollectionSlot, _ skippingOtherTypes: Bool) throws -> Bool {
        if skippingOtherTypes, let value = slot.value, value.kind != .list { return false }
        return try slot.list() != nil
    }

    /// LMPOP's and BLMPOP's reply: the key and the elements popped from it.
    static func writeKeyAndElements(_ out: inout ByteBuffer, _ key: [UInt8], _ elements: [[UInt8]]) {
        out.writeRESPArrayHeader(2)
        out.writeRESPBulk(key)
        writeBulkArray(&out, elements)
    }

    /// LMPOP's and BLMPOP's `numkeys key [key ...] LEFT|RIGHT [COUNT count]` from `numkeys` at
    /// `index`, with Redis' errors: the keys, the side, and the count (1 by default).
    static func multiPopArguments(_ inv: Invocation, numkeysAt index: Int) throws -> (keys: [ByteBuffer], front: Bool, count: Int) {
        guard let numkeys = try? inv.integer(index), numkeys >= 1 else {
            throw CommandError("ERR numkeys should be greater than 0")
        }
        // The side must follow the keys.
        guard numkeys < inv.arguments.count - index - 1 else { throw CommandError.syntax }
        let sideIndex = index + numkeys + 1
        let front = try listSide(inv, sideIndex)
        var count: Int?
        var i = sideIndex + 1
        while i < inv.arguments.count {
            guard count == nil, inv.upper(i) == "COUNT", i + 1 < inv.arguments.count else { throw CommandError.syntax }
            guard let n = try? inv.integer(i + 1), n >= 1 else { throw CommandError("ERR count should be greater than 0") }
            count = n
            i += 2
        }
        return (Array(inv.arguments[(index + 1)...(index + numkeys)]), front, count ?? 1)
    }

    /// Moves one element from the source (slot 0) to the destination (slot 1), which may be the
    /// same list (a rotation); nil, changing nothing, when the source does not exist. The
    /// destination's type is checked only when there is an element to move, as Redis does.
    /// With `skippingOtherTypes`, a source of another type is passed over like a missing one.
    static func move(
        _ slots: inout CollectionSlots, from: Bool, to: Bool, limits: CollectionLimits, skippingOtherTypes: Bool = false
    ) throws -> [UInt8]? {
        guard try holdsList(slots[0], skippingOtherTypes) else { return nil }
        _ = try slots[1].list()
        let (source, destination) = (slots.position[0], slots.position[1])
        guard let popped = try slots.unique[source].withList(create: false, { l in l.pop(front: from, limits: limits) }),
            let element = popped
        else { return nil }
        _ = try slots.unique[destination].withList(create: true) { l in l.push(element, front: to, limits: limits) }
        return element
    }

    /// LMOVE and RPOPLPUSH: the element moved, or null.
    static func moveCommand(_ inv: inout Invocation, from: Bool, to: Bool) throws -> Outcome {
        let limits = inv.collectionLimits
        return try inv.collections([inv.arguments[1], inv.arguments[2]], write: true) { slots, out, version in
            if let element = try move(&slots, from: from, to: to, limits: limits) { out.writeRESPBulk(element) } else { out.writeRESPNull(version) }
        }
    }

    /// BLPOP and BRPOP: `[key, element]` from the first key holding a list, waiting for a push
    /// when none does; a null array when the timeout passes.
    static func blockingPopCommand(_ name: String, front: Bool) -> CommandSpec {
        CommandSpec(name, arity: -3, flags: [.write, .oneNode, .noScript], keys: (1, -2, 1)) { inv in
            let timeout = try inv.blockingTimeout(at: inv.arguments.count - 1)
            let keys = Array(inv.arguments[1..<(inv.arguments.count - 1)])
            let (names, settings) = (keys.map { Array($0.readableBytesView) }, inv.server.settings)
            let first = FirstAttempt()
            return try inv.block(keys: keys, timeout: timeout, onTimeout: { out, version in out.writeRESPNullArray(version) }) {
                slots, out, _ in
                let limits = settings.collectionLimits
                guard let (i, popped) = try popFirst(&slots, count: 1, front: front, limits: limits, skippingOtherTypes: !first.take())
                else { return false }
                out.writeRESPArrayHeader(2)
                out.writeRESPBulk(names[i])
                out.writeRESPBulk(popped[0])
                return true
            }
        }
    }

    /// BLMOVE and BRPOPLPUSH: LMOVE once the source has an element. A timeout answers a null
    /// array, as Redis times out every blocked list command; inside MULTI or a script, where it
    /// cannot wait, an empty source answers LMOVE's null instead.
    static func blockingMoveCommand(_ inv: inout Invocation, from: Bool, to: Bool, timeoutAt index: Int) throws -> Outcome {
        let timeout = try inv.blockingTimeout(at: index)
        let settings = inv.server.settings
        let (atomic, first) = (inv.origin == .atomic, FirstAttempt())
        return try inv.block(
            keys: [inv.arguments[1], inv.arguments[2]], timeout: timeout,
            onTimeout: { out, version in if atomic { out.writeRESPNull(version) } else { out.writeRESPNullArray(version) } }
        ) { slots, out, _ in
            let limits = settings.collectionLimits
            guard let element = try move(&slots, from: from, to: to, limits: limits, skippingOtherTypes: !first.take()) else { return false }
            out.writeRESPBulk(element)
            return true
        }
    }
}

/// LPOS's options after the element, as Redis reads them: RANK r (r != 0, negative from the
/// tail), COUNT n (n >= 0, 0: all matches) and MAXLEN n (n >= 0, 0: the whole list), in any
/// order, the last of each winning.
struct PositionOptions: Sendable {
    var rank = 1
    /// nil without COUNT: the reply is then one position or null rather than an array.
    var count: Int?
    var maxLength = 0

    init(_ inv: Invocation, from start: Int) throws {
        var i = start
        while i < inv.arguments.count {
            guard i + 1 < inv.arguments.count else { throw CommandError.syntax }
            switch inv.upper(i) {
            case "RANK":
                rank = try inv.integer(i + 1)
                guard rank != Int.min else {
                    throw CommandError("ERR value is out of range, value must between \(-Int.max) and \(Int.max)")
                }
                guard rank != 0 else {
                    throw CommandError(
                        "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list"
                    )
                }
            case "COUNT":
                guard let n = try? inv.integer(i + 1), n >= 0 else { throw CommandError("ERR COUNT can't be negative") }
                count = n
            case "MAXLEN":
                guard let n = try? inv.integer(i + 1), n >= 0 else { throw CommandError("ERR MAXLEN can't be negative") }
                maxLength = n
            default:
                throw CommandError.syntax
            }
            i += 2
        }
    }
}
