import NIOCore
import RESP
import StrataCollections
import StrataStore
import Synchronization

/// A key's value as collection commands see it: a string or one of the collection types.
enum StoredValue: Sendable {
    case string([UInt8])
    case hash(HashValue)
    case list(ListValue)
    case set(SetValue)
    case zset(SortedSetValue)

    var kind: ValueKind {
        switch self {
        case .string: .string
        case .hash: .hash
        case .list: .list
        case .set: .set
        case .zset: .zset
        }
    }

    /// Decodes a store entry; a collection whose bytes do not parse is an error (never guessed).
    init(_ entry: Entry) throws {
        switch entry.kind {
        case .string: self = .string(entry.value)
        case .hash: self = .hash(try HashValue(deserializing: entry.value))
        case .list: self = .list(try ListValue(deserializing: entry.value))
        case .set: self = .set(try SetValue(deserializing: entry.value))
        case .zset: self = .zset(try SortedSetValue(deserializing: entry.value))
        }
    }

    /// The bytes the store keeps.
    func serialized() -> [UInt8] {
        switch self {
        case .string(let bytes): bytes
        case .hash(let value): value.serialize()
        case .list(let value): value.serialize()
        case .set(let value): value.serialize()
        case .zset(let value): value.serialize()
        }
    }

    /// Whether this is a collection with no members (the key must then not exist).
    var isEmptyCollection: Bool {
        switch self {
        case .string: false
        case .hash(let value): value.isEmpty
        case .list(let value): value.isEmpty
        case .set(let value): value.isEmpty
        case .zset(let value): value.isEmpty
        }
    }

    /// Members (fields of a hash, elements of a list); a string's length.
    var memberCount: Int {
        switch self {
        case .string(let bytes): bytes.count
        case .hash(let value): value.count
        case .list(let value): value.count
        case .set(let value): value.count
        case .zset(let value): value.count
        }
    }

    /// What the value takes as a live structure in memory (the data structures' own accounting).
    var memoryBytes: Int {
        switch self {
        case .string(let bytes): bytes.count
        case .hash(let value): value.memoryBytes
        case .list(let value): value.memoryBytes
        case .set(let value): value.memoryBytes
        case .zset(let value): value.memoryBytes
        }
    }

    /// OBJECT ENCODING's answer for a collection (strings are answered by their bytes).
    var encodingName: String? {
        switch self {
        case .string: nil
        case .hash(let value): value.encodingName
        case .list(let value): value.encodingName
        case .set(let value): value.encodingName
        case .zset(let value): value.encodingName
        }
    }
}

/// One key of a collection command: its value (nil: the key does not exist) and absolute expiry
/// in ms (0: none). A command that replaces a key (a STORE form) sets `expiresAt` to 0.
struct CollectionSlot: Sendable {
    var value: StoredValue?
    var expiresAt: Int64

    // Each accessor: nil if the key is absent, WRONGTYPE if it holds another type.

    func hash() throws -> HashValue? {
        switch value {
        case nil: return nil
        case .hash(let v): return v
        default: throw CommandError.wrongType
        }
    }

    func list() throws -> ListValue? {
        switch value {
        case nil: return nil
        case .list(let v): return v
        default: throw CommandError.wrongType
        }
    }

    func set() throws -> SetValue? {
        switch value {
        case nil: return nil
        case .set(let v): return v
        default: throw CommandError.wrongType
        }
    }

    func zset() throws -> SortedSetValue? {
        switch value {
        case nil: return nil
        case .zset(let v): return v
        default: throw CommandError.wrongType
        }
    }

    // The `with*` forms mutate in place: the value is taken out of the slot while `body` runs,
    // so a large value is never copied on write. With `create`, an absent key starts as `make()`;
    // without it, `body` is not called for an absent key and the result is nil. A value left
    // empty deletes the key.

    mutating func withHash<R>(create: Bool, _ body: (inout HashValue) throws -> R) throws -> R? {
        guard var v = try hash() ?? (create ? HashValue() : nil) else { return nil }
        value = nil
        defer { value = v.isEmpty ? nil : .hash(v) }
        return try body(&v)
    }

    mutating func withList<R>(create: Bool, _ body: (inout ListValue) throws -> R) throws -> R? {
        guard var v = try list() ?? (create ? ListValue() : nil) else { return nil }
        value = nil
        defer { value = v.isEmpty ? nil : .list(v) }
        return try body(&v)
    }

    mutating func withSet<R>(create: () -> SetValue?, _ body: (inout SetValue) throws -> R) throws -> R? {
        guard var v = try set() ?? create() else { return nil }
        value = nil
        defer { value = v.isEmpty ? nil : .set(v) }
        return try body(&v)
    }

    mutating func withZset<R>(create: () -> SortedSetValue?, _ body: (inout SortedSetValue) throws -> R) throws -> R? {
        guard var v = try zset() ?? create() else { return nil }
        value = nil
        defer { value = v.isEmpty ? nil : .zset(v) }
        return try body(&v)
    }
}

/// The slots of a command's keys by argument order. A key named twice (SMOVE s s, LMOVE l l,
/// SINTERSTORE d d) is one slot: a change through either position is seen through both.
struct CollectionSlots: Sendable {
    var unique: [CollectionSlot]
    /// For each key position, its index in `unique`.
    let position: [Int]

    subscript(_ i: Int) -> CollectionSlot {
        get { unique[position[i]] }
        set { unique[position[i]] = newValue }
    }

    var count: Int { position.count }
}

extension Invocation {
    /// The collections' thresholds now (CONFIG SET applies to the next command).
    var collectionLimits: CollectionLimits { server.settings.collectionLimits }

    /// Runs `body` on the current values of `keys` (positions in argument order; a key may repeat)
    /// under every key's lock, then stores what `body` changed: a slot left nil or empty deletes
    /// its key, a changed value or expiry is written with its type. Runs here when every key is in
    /// memory, else on a disk thread (which promotes what it reads). `write: false` skips the
    /// comparison and never writes (read-only commands). WRONGTYPE and other errors thrown by
    /// `body` are the reply and change nothing.
    mutating func collections(
        _ keys: [ByteBuffer], write: Bool,
        _ body: @escaping @Sendable (inout CollectionSlots, inout ByteBuffer, RESPVersion) throws -> Void
    ) throws -> Outcome {
        var unique: [[UInt8]] = []
        var position: [Int] = []
        var index: [[UInt8]: Int] = [:]
        for key in keys {
            let bytes = Array(key.readableBytesView)
            if let i = index[bytes] {
                position.append(i)
            } else {
                index[bytes] = unique.count
                position.append(unique.count)
                unique.append(bytes)
            }
        }
        let store = self.store
        let (keyList, positions) = (unique, position)
        let cache = server.collectionCache
        let work: @Sendable (inout ByteBuffer, RESPVersion) throws -> Void = { out, version in
            try store.updateAll(keyList, promote: !write) { entries -> ([Mutation], Void) in
                let before = try Invocation.slots(entries, keys: keyList, cache: cache)
                var slots = CollectionSlots(unique: before, position: positions)
                // Replies go to a scratch buffer first, so an error leaves no half-written reply.
                var reply = ByteBuffer()
                try body(&slots, &reply, version)
                out.writeImmutableBuffer(reply)
                guard write else { return (Array(repeating: .none, count: entries.count), ()) }
                let mutations = Invocation.mutations(from: slots, over: entries)
                Invocation.remember(mutations, of: slots, keys: keyList, in: cache)
                return (mutations, ())
            }
        }
        // Here only when every value is in memory and small: decoding a large one takes long
        // enough to stall the event loop's other clients, so it goes to a disk thread.
        var bytes = 0
        for key in keys {
            guard let length = key.withUnsafeReadableBytes({ store.memoryValueLength($0) }) else { return try offload(work) }
            bytes += length
        }
        if bytes > Invocation.inlineCollectionBytes { return try offload(work) }
        try work(&out, version)
        return .done
    }

    /// The slots for `entries`, decoded (or taken from the cache of decoded values).
    static func slots(_ entries: [Entry?], keys: [[UInt8]], cache: CollectionCache) throws -> [CollectionSlot] {
        try entries.enumerated().map { i, entry in
            CollectionSlot(value: try entry.map { try cache.value(of: $0, key: keys[i]) }, expiresAt: entry?.expiresAt ?? 0)
        }
    }

    /// Keeps the decoded form of each value about to be written, so the next command on it
    /// skips the decode; a deleted key is forgotten.
    static func remember(_ mutations: [Mutation], of slots: CollectionSlots, keys: [[UInt8]], in cache: CollectionCache) {
        for (i, mutation) in mutations.enumerated() {
            switch mutation {
            case .set(let bytes, _, _):
                if let value = slots.unique[i].value { cache.remember(keys[i], bytes: bytes, value: value) }
            case .delete:
                cache.forget(keys[i])
            default:
                break
            }
        }
    }

    /// The most bytes of collections a command decodes on its event loop.
    static let inlineCollectionBytes = 64 << 10

    /// What to store for each slot: a slot left nil or empty deletes its key, a changed value or
    /// expiry is written with its type, an unchanged one is left alone.
    static func mutations(from slots: CollectionSlots, over entries: [Entry?]) -> [Mutation] {
        slots.unique.enumerated().map { i, slot -> Mutation in
            guard let value = slot.value, !value.isEmptyCollection else {
                return entries[i] == nil ? .none : .delete
            }
            let bytes = value.serialized()
            if let old = entries[i], old.kind == value.kind, old.value == bytes {
                return old.expiresAt == slot.expiresAt ? .none : .expire(at: slot.expiresAt)
            }
            return .set(value: bytes, expiresAt: slot.expiresAt, kind: value.kind)
        }
    }

    /// `collections` for one key at argument `index`.
    mutating func collection(
        at index: Int = 1, write: Bool,
        _ body: @escaping @Sendable (inout CollectionSlot, inout ByteBuffer, RESPVersion) throws -> Void
    ) throws -> Outcome {
        try collections([arguments[index]], write: write) { slots, out, version in
            try body(&slots.unique[0], &out, version)
        }
    }
}

extension Invocation {
    /// A blocking command's timeout argument in seconds (0: wait forever), read as Redis 7.0's
    /// `getTimeoutFromObjectOrReply` does: a long double, whose milliseconds are truncated to a
    /// 64-bit integer. So a timeout under 1 ms (even a slightly negative one) waits forever, and
    /// one whose milliseconds pass the integer's range (inf, 1e20) is "negative" there, as the
    /// cast gives the minimum.
    func blockingTimeout(at i: Int) throws -> Double {
        guard let seconds = LongDouble.parse(arguments[i].readableBytesView) else {
            throw CommandError("ERR timeout is not a float or out of range")
        }
        let milliseconds = (seconds * 1000).rounded(.towardZero)
        guard milliseconds >= 0, milliseconds < 9_223_372_036_854_775_808 else { throw CommandError("ERR timeout is negative") }
        return Double(milliseconds) / 1000
    }

    /// A blocking pop (BLPOP, BLMOVE, BZPOPMIN...): `attempt` runs on the keys now and, while it
    /// finds nothing (returns false, changing nothing), again after each write to one of `keys`,
    /// blocked clients taking their turn in arrival order, until it serves (returns true; its
    /// changes are stored and its reply sent) or `timeout` seconds pass (0: never), when
    /// `onTimeout` writes the reply. In MULTI or a script it never waits (Redis: the timeout reply
    /// at once).
    mutating func block(
        keys: [ByteBuffer], timeout: Double,
        onTimeout: @escaping @Sendable (inout ByteBuffer, RESPVersion) -> Void,
        attempt: @escaping @Sendable (inout CollectionSlots, inout ByteBuffer, RESPVersion) throws -> Bool
    ) throws -> Outcome {
        if origin == .atomic {
            return try collections(keys, write: true) { slots, out, version in
                if try !attempt(&slots, &out, version) { onTimeout(&out, version) }
            }
        }
        let (store, gate, version, cache) = (self.store, server.gate, self.version, server.collectionCache)
        let keyBytes = keys.map { Array($0.readableBytesView) }
        let pop: @Sendable (inout ByteBuffer) throws -> Bool = { out in
            try gate.shared { try Invocation.attemptPop(store, cache, keyBytes, version, &out, attempt) }
        }
        let (waiter, behind) = server.blocked.register(
            keys: keyBytes, session: session.id, eventLoop: eventLoop, timeout: timeout, attempt: pop,
            onTimeout: {
                var out = ByteBuffer()
                onTimeout(&out, version)
                return Reply(out)
            })
        // The common case, data already there: served here. The handler holds the gate already.
        let inMemory = keys.allSatisfy { key in key.withUnsafeReadableBytes { store.isInMemory($0) } }
        if !behind && inMemory {
            let served: Bool
            do {
                served = try waiter.running.withLock { state throws -> Bool in
                    guard !state.done else { return false }
                    var scratch = ByteBuffer()
                    let popped: Bool
                    do {
                        popped = try Invocation.attemptPop(store, cache, keyBytes, version, &scratch, attempt)
                    } catch {
                        // An error (WRONGTYPE) is the reply at once, as Redis answers before blocking.
                        state.done = true
                        state.timer?.cancel()
                        throw error
                    }
                    guard popped else { return false }
                    state.done = true
                    state.timer?.cancel()
                    out.writeImmutableBuffer(scratch)
                    return true
                }
            } catch {
                waiter.promise.succeed(Reply(ByteBuffer()))  // unregisters it; the error is the reply
                throw error
            }
            if served {
                waiter.promise.succeed(Reply(ByteBuffer()))  // unregisters it; the reply went out above
                return .done
            }
        } else {
            server.blocked.signal(keyBytes)
        }
        return .deferred(waiter.promise.futureResult)
    }

    /// One try of a blocking pop on the current values of `keys`, storing its changes if it served.
    private static func attemptPop(
        _ store: TieredStore, _ cache: CollectionCache, _ keys: [[UInt8]], _ version: RESPVersion, _ out: inout ByteBuffer,
        _ attempt: @Sendable (inout CollectionSlots, inout ByteBuffer, RESPVersion) throws -> Bool
    ) throws -> Bool {
        var unique: [[UInt8]] = []
        var position: [Int] = []
        for key in keys {
            if let i = unique.firstIndex(of: key) { position.append(i) } else {
                position.append(unique.count)
                unique.append(key)
            }
        }
        return try store.updateAll(unique) { entries -> ([Mutation], Bool) in
            let before = try Invocation.slots(entries, keys: unique, cache: cache)
            var slots = CollectionSlots(unique: before, position: position)
            var reply = ByteBuffer()
            guard try attempt(&slots, &reply, version) else { return (Array(repeating: .none, count: entries.count), false) }
            out.writeImmutableBuffer(reply)
            let mutations = Invocation.mutations(from: slots, over: entries)
            Invocation.remember(mutations, of: slots, keys: unique, in: cache)
            return (mutations, true)
        }
    }
}

/// Tells a blocking pop's first attempt from the later ones: only the first answers WRONGTYPE
/// for a key of another type; after a write Redis 7.0 serves a waiter only from keys of its
/// type, so later attempts pass such a key over and the client goes on waiting.
final class FirstAttempt: Sendable {
    private let pending = Atomic<Bool>(true)

    /// True on the first call only.
    func take() -> Bool { pending.exchange(false, ordering: .relaxed) }
}
