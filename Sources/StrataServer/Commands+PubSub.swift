import NIOCore
import RESP
import StrataCluster
import StrataStore

extension Commands {
    /// Pub/sub with Redis 7's replies in RESP2 and RESP3 (push messages). In a cluster a PUBLISH
    /// or SPUBLISH through any node reaches the subscribers on every node: the node that takes it
    /// delivers here and sends `STRATA.PUBLISH` to every live peer on its one ordered connection
    /// to each, so one publisher's messages arrive in the order it sent them.
    static let pubsub: [CommandSpec] = [
        subscribeCommand("subscribe", kind: .channel),
        subscribeCommand("psubscribe", kind: .pattern),
        subscribeCommand("ssubscribe", kind: .shard),
        unsubscribeCommand("unsubscribe", kind: .channel),
        unsubscribeCommand("punsubscribe", kind: .pattern),
        unsubscribeCommand("sunsubscribe", kind: .shard),
        publishCommand("publish", shard: false),
        publishCommand("spublish", shard: true),

        CommandSpec("pubsub", arity: -2, flags: [.admin, .container]) { inv in
            let pubsub = inv.server.pubsub
            let sub = inv.upper(1)
            switch sub {
            case "CHANNELS", "SHARDCHANNELS":
                guard inv.arguments.count <= 3 else { throw CommandError.arity("pubsub|\(sub.lowercased())") }
                let pattern = inv.arguments.count == 3 ? inv.bytes(2) : nil
                let shard = sub == "SHARDCHANNELS"
                let local = pubsub.activeChannels(matching: pattern, shard: shard)
                return try clusterWide(&inv, local: { out in writeBulkArray(&out, local) }) { replies in
                    var all = Set(local)
                    for reply in replies { for element in reply.elements { if let bytes = element.payload { all.insert(Array(bytes.readableBytesView)) } } }
                    let merged = all.sorted { $0.lexicographicallyPrecedes($1) }
                    return { out in writeBulkArray(&out, merged) }
                }
            case "NUMSUB", "SHARDNUMSUB":
                let channels = (2..<inv.arguments.count).map { inv.bytes($0) }
                let local = pubsub.subscriberCounts(channels, shard: sub == "SHARDNUMSUB")
                let write: @Sendable ([Int]) -> @Sendable (inout ByteBuffer) -> Void = { counts in
                    { out in
                        out.writeRESPArrayHeader(channels.count * 2)
                        for (channel, count) in zip(channels, counts) {
                            out.writeRESPBulk(channel)
                            out.writeRESPInteger(count)
                        }
                    }
                }
                return try clusterWide(&inv, local: write(local)) { replies in
                    var counts = local
                    for reply in replies where reply.elements.count == channels.count * 2 {
                        for i in 0..<channels.count { counts[i] += reply.elements[2 * i + 1].integer ?? 0 }
                    }
                    let totals = counts
                    return write(totals)
                }
            case "NUMPAT":
                guard inv.arguments.count == 2 else { throw CommandError.arity("pubsub|numpat") }
                let local = pubsub.patternCount
                return try clusterWide(&inv, local: { out in out.writeRESPInteger(local) }) { replies in
                    let total = replies.reduce(local) { $0 + ($1.integer ?? 0) }
                    return { out in out.writeRESPInteger(total) }
                }
            case "HELP":
                guard inv.arguments.count == 2 else { throw CommandError.arity("pubsub|help") }
                writeHelp([
                    "CHANNELS [<pattern>]", "    Return the currently active channels matching a <pattern> (default: '*').",
                    "NUMPAT", "    Return number of subscriptions to patterns.",
                    "NUMSUB [<channel> ...]",
                    "    Return the number of subscribers for the specified channels, excluding",
                    "    pattern subscriptions(default: no channels).",
                    "SHARDCHANNELS [<pattern>]",
                    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
                    "SHARDNUMSUB [<shardchannel> ...]",
                    "    Return the number of subscribers for the specified shard level channel(s)",
                ], command: "PUBSUB", into: &inv.out)
                return .done
            default:
                throw CommandError("ERR unknown subcommand '\(inv.string(1))'. Try PUBSUB HELP.")
            }
        },

        // STRATA.PUBLISH channel|shard name message: a peer's PUBLISH, delivered here only; the
        // reply is how many subscribers here received it.
        CommandSpec("strata.publish", arity: 4, flags: [.admin, .local]) { inv in
            guard inv.session.state.withLock({ $0.isPeer }) else { throw CommandError("ERR STRATA.PUBLISH is for cluster peers") }
            let delivered = inv.server.pubsub.publish(inv.bytes(2), inv.bytes(3), shard: inv.upper(1) == "SHARD")
            inv.server.metrics.pubsubMessages.increment(by: Int64(delivered))
            inv.integer(reply: delivered)
            return .done
        },
    ]

    /// SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE: one confirmation per name, with the connection's
    /// subscription count after it (channels and patterns together; shard channels apart).
    static func subscribeCommand(_ name: String, kind: PubSub.Kind) -> CommandSpec {
        CommandSpec(name, arity: -2, flags: [.admin, .local, .noScript]) { inv in
            let names = (1..<inv.arguments.count).map { inv.bytes($0) }
            let session = inv.session
            var added: [[UInt8]] = []
            let counts = session.state.withLock { state -> [Int] in
                names.map { channel in
                    if state.subscribe(channel, kind: kind) { added.append(channel) }
                    return state.subscriptionCount(kind)
                }
            }
            inv.server.pubsub.add(session, to: added, kind: kind)
            for (channel, count) in zip(names, counts) {
                PubSub.writePushHeader(&inv.out, count: 3, inv.version)
                inv.bulk(kind.subscribeName)
                inv.out.writeRESPBulk(channel)
                inv.integer(reply: count)
            }
            return .done
        }
    }

    /// UNSUBSCRIBE, PUNSUBSCRIBE, SUNSUBSCRIBE: the names given, or every one of the kind; with
    /// none to leave, one reply with a null name.
    static func unsubscribeCommand(_ name: String, kind: PubSub.Kind) -> CommandSpec {
        CommandSpec(name, arity: -1, flags: [.admin, .local, .noScript]) { inv in
            let session = inv.session
            let given = (1..<inv.arguments.count).map { inv.bytes($0) }
            var removed: [[UInt8]] = []
            let replies = session.state.withLock { state -> [([UInt8]?, Int)] in
                let names = given.isEmpty ? state.subscriptions(kind) : given
                var replies: [([UInt8]?, Int)] = []
                for channel in names {
                    if state.unsubscribe(channel, kind: kind) { removed.append(channel) }
                    replies.append((channel, state.subscriptionCount(kind)))
                }
                if replies.isEmpty { replies.append((nil, state.subscriptionCount(kind))) }
                return replies
            }
            inv.server.pubsub.remove(session, from: removed, kind: kind)
            for (channel, count) in replies {
                PubSub.writePushHeader(&inv.out, count: 3, inv.version)
                inv.bulk(kind.unsubscribeName)
                if let channel { inv.out.writeRESPBulk(channel) } else { inv.out.writeRESPNull(inv.version) }
                inv.integer(reply: count)
            }
            return .done
        }
    }

    /// PUBLISH and SPUBLISH: delivered here, then on every live peer; the reply counts every
    /// node's receivers (a peer that does not answer within a second counts none).
    static func publishCommand(_ name: String, shard: Bool) -> CommandSpec {
        CommandSpec(name, arity: 3, flags: .local) { inv in
            let (channel, message) = (inv.bytes(1), inv.bytes(2))
            let local = inv.server.pubsub.publish(channel, message, shard: shard)
            inv.server.metrics.pubsubMessages.increment(by: Int64(local))
            guard let cluster = inv.server.cluster, inv.origin != .peer else {
                inv.integer(reply: local)
                return .done
            }
            let request = [
                ByteBuffer(string: "STRATA.PUBLISH"), ByteBuffer(string: shard ? "shard" : "channel"),
                inv.arguments[1], inv.arguments[2],
            ]
            let sent = cluster.broadcast(request, timeout: .seconds(1), eventLoop: inv.eventLoop)
            // Inside a transaction or script the reply cannot wait: it counts this node's receivers.
            if inv.origin == .atomic {
                inv.integer(reply: local)
                return .done
            }
            return .deferred(sent.map { replies in
                var out = ByteBuffer()
                out.writeRESPInteger(replies.reduce(local) { $0 + ($1?.integer ?? 0) })
                return Reply(out)
            })
        }
    }

    /// A PUBSUB introspection: this node's answer alone, or in a cluster every live peer's too,
    /// combined by `merge` (a peer that does not answer within a second is left out).
    private static func clusterWide(
        _ inv: inout Invocation, local: @escaping @Sendable (inout ByteBuffer) -> Void,
        merge: @escaping @Sendable ([RESPReply]) -> @Sendable (inout ByteBuffer) -> Void
    ) throws -> Outcome {
        guard let cluster = inv.server.cluster, inv.origin != .peer else {
            local(&inv.out)
            return .done
        }
        let sent = cluster.broadcast(inv.arguments, timeout: .seconds(1), eventLoop: inv.eventLoop)
        return .deferred(sent.map { replies in
            var out = ByteBuffer()
            merge(replies.compactMap { $0 }.filter { $0.kind != .error })(&out)
            return Reply(out)
        })
    }
}
