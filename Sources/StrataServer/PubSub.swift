import NIOCore
import RESP
import Synchronization

/// The node's pub/sub subscriptions: who listens on which channel, pattern and shard channel,
/// and delivery of a published message to them. A cluster's other nodes are reached by the
/// PUBLISH command itself (`STRATA.PUBLISH` to every live peer); this registry is one node's.
final class PubSub: Sendable {
    enum Kind: Sendable {
        case channel, pattern, shard

        /// The reply's first element when subscribing and unsubscribing.
        var subscribeName: String {
            switch self {
            case .channel: "subscribe"
            case .pattern: "psubscribe"
            case .shard: "ssubscribe"
            }
        }

        var unsubscribeName: String {
            switch self {
            case .channel: "unsubscribe"
            case .pattern: "punsubscribe"
            case .shard: "sunsubscribe"
            }
        }
    }

    private struct State {
        var channels: [[UInt8]: [UInt64: ClientSession]] = [:]
        var patterns: [[UInt8]: [UInt64: ClientSession]] = [:]
        var shards: [[UInt8]: [UInt64: ClientSession]] = [:]

        subscript(kind: Kind) -> [[UInt8]: [UInt64: ClientSession]] {
            get {
                switch kind {
                case .channel: channels
                case .pattern: patterns
                case .shard: shards
                }
            }
            set {
                switch kind {
                case .channel: channels = newValue
                case .pattern: patterns = newValue
                case .shard: shards = newValue
                }
            }
        }
    }

    private let state = Mutex(State())

    // MARK: Subscriptions

    /// Adds `session` to `names`; the session's own sets are updated by the caller.
    func add(_ session: ClientSession, to names: [[UInt8]], kind: Kind) {
        state.withLock { s in
            for name in names { s[kind][name, default: [:]][session.id] = session }
        }
    }

    /// Removes `session` from `names`.
    func remove(_ session: ClientSession, from names: [[UInt8]], kind: Kind) {
        state.withLock { s in
            for name in names {
                s[kind][name]?[session.id] = nil
                if s[kind][name]?.isEmpty == true { s[kind][name] = nil }
            }
        }
    }

    /// Forgets every subscription of a closed or reset connection.
    func removeAll(_ session: ClientSession) {
        let (channels, patterns, shards) = session.state.withLock { state in
            defer { (state.channels, state.patterns, state.shardChannels) = ([], [], []) }
            return (Array(state.channels), state.patterns, Array(state.shardChannels))
        }
        if channels.isEmpty && patterns.isEmpty && shards.isEmpty { return }
        remove(session, from: channels, kind: .channel)
        remove(session, from: patterns, kind: .pattern)
        remove(session, from: shards, kind: .shard)
    }

    // MARK: Publishing

    /// Delivers `message` to this node's subscribers of `channel` (and, for a plain channel,
    /// of every matching pattern); returns how many deliveries were made, as Redis counts them.
    func publish(_ channel: [UInt8], _ message: [UInt8], shard: Bool) -> Int {
        let (direct, matched) = state.withLock { s -> ([ClientSession], [([UInt8], ClientSession)]) in
            if shard { return (Array((s.shards[channel] ?? [:]).values), []) }
            let direct = Array((s.channels[channel] ?? [:]).values)
            var matched: [([UInt8], ClientSession)] = []
            for (pattern, sessions) in s.patterns where GlobPattern.matches(pattern, channel) {
                for session in sessions.values { matched.append((pattern, session)) }
            }
            return (direct, matched)
        }
        if direct.isEmpty && matched.isEmpty { return 0 }
        var encoded: [RESPVersion: ByteBuffer] = [:]
        for session in direct {
            let version = session.protocolVersion
            if encoded[version] == nil {
                encoded[version] = Self.encode([shard ? "smessage" : "message"], [channel, message], version)
            }
            session.push(encoded[version]!)
        }
        for (pattern, session) in matched {
            session.push(Self.encode(["pmessage"], [pattern, channel, message], session.protocolVersion))
        }
        return direct.count + matched.count
    }

    /// A push message: `*n` in RESP2, `>n` in RESP3, the kind then the bulk strings.
    static func encode(_ kind: [String], _ items: [[UInt8]], _ version: RESPVersion) -> ByteBuffer {
        var out = ByteBuffer()
        writePushHeader(&out, count: kind.count + items.count, version)
        for k in kind { out.writeRESPBulk(Array(k.utf8)) }
        for item in items { out.writeRESPBulk(item) }
        return out
    }

    static func writePushHeader(_ out: inout ByteBuffer, count: Int, _ version: RESPVersion) {
        if version == .v3 {
            out.writeInteger(UInt8(ascii: ">"))
            out.writeDecimal(count)
            out.writeStaticString("\r\n")
        } else {
            out.writeRESPArrayHeader(count)
        }
    }

    // MARK: Introspection (PUBSUB)

    /// Channels (or shard channels) with at least one subscriber, matching `pattern` if given.
    func activeChannels(matching pattern: [UInt8]?, shard: Bool) -> [[UInt8]] {
        let names = state.withLock { s in Array((shard ? s.shards : s.channels).keys) }
        guard let pattern else { return names }
        return names.filter { GlobPattern.matches(pattern, $0) }
    }

    /// Subscribers of each channel (or shard channel).
    func subscriberCounts(_ channels: [[UInt8]], shard: Bool) -> [Int] {
        state.withLock { s in channels.map { (shard ? s.shards : s.channels)[$0]?.count ?? 0 } }
    }

    /// Patterns with at least one subscriber (PUBSUB NUMPAT counts unique patterns).
    var patternCount: Int { state.withLock { $0.patterns.count } }

    /// Channels and shard channels with at least one subscriber.
    var channelCount: Int { state.withLock { $0.channels.count + $0.shards.count } }
}

extension ClientSession.State {
    /// Adds a subscription; false if the connection had it already.
    mutating func subscribe(_ name: [UInt8], kind: PubSub.Kind) -> Bool {
        switch kind {
        case .channel: return channels.insert(name).inserted
        case .shard: return shardChannels.insert(name).inserted
        case .pattern:
            guard !patterns.contains(name) else { return false }
            patterns.append(name)
            return true
        }
    }

    /// Removes a subscription; false if the connection did not have it.
    mutating func unsubscribe(_ name: [UInt8], kind: PubSub.Kind) -> Bool {
        switch kind {
        case .channel: return channels.remove(name) != nil
        case .shard: return shardChannels.remove(name) != nil
        case .pattern:
            guard let i = patterns.firstIndex(of: name) else { return false }
            patterns.remove(at: i)
            return true
        }
    }

    /// The connection's subscriptions of a kind (patterns in subscription order).
    func subscriptions(_ kind: PubSub.Kind) -> [[UInt8]] {
        switch kind {
        case .channel: Array(channels)
        case .shard: Array(shardChannels)
        case .pattern: patterns
        }
    }

    /// The count Redis puts in a (un)subscribe reply: channels and patterns together, shard
    /// channels apart.
    func subscriptionCount(_ kind: PubSub.Kind) -> Int {
        kind == .shard ? shardChannels.count : channels.count + patterns.count
    }
}
