import NIOCore
import RESP
import StrataCluster
import StrataStore

/// What membership work this node has under way.
struct Moves: Sendable {
    /// A join (pulling) or leave (pushing) stream is running.
    var streaming = false
    /// This node is admitting a joiner or starting a leave (one change at a time).
    var changing = false
    /// The settled epoch whose clean-up has started.
    var cleanedEpoch: UInt64 = 0
}

/// Nodes joining and leaving a running cluster.
///
/// - Join: a node started with `--join host:port` asks that member to admit it
///   (`STRATA.CLUSTER JOIN id host:port`). The member adds it as `joining` at the next epoch and
///   sends the membership to every node. Writes now go to the joiner too (it is an owner on the
///   future ring) while reads stay with the old owners. The joiner makes sure each member has
///   the new membership, pulls from it every record it will own (`STRATA.SYNC`), then makes
///   itself `normal`: from then on the ring includes it.
/// - Leave: `STRATA.CLUSTER LEAVE [id]` marks the node `leaving`. It makes sure every member has
///   that membership (so their writes also go to the keys' next owners), pushes each of its
///   records to the record's owners on the ring without it (`STRATA.APPLY`), removes itself, and
///   exits.
/// - Clean-up: once a change is done, every node hands the records it no longer owns to their
///   owners and drops its copies.
/// Records carry versions and every copy keeps the newest (last writer wins), so sending a
/// record twice, or racing a client's write, never loses the newer value.
extension Server {
    static let streamTimeout: TimeAmount = .seconds(10)
    static let streamBatch = 500

    /// Starts membership work: saving every new membership, streaming when this node joins or
    /// leaves, cleaning up after a change, and (for a node started with `--join`) asking to be
    /// admitted. `onLeft` runs once this node has left the cluster.
    public func startMembership(group: any EventLoopGroup, onLeft: @escaping @Sendable () -> Void) {
        guard let cluster else { return }
        self.onLeft.withLock { $0 = onLeft }
        cluster.onMembershipChange { [weak self] old, new in
            self?.membershipChanged(from: old, to: new, eventLoop: group.next())
        }
        let current = cluster.membership
        save(current)
        resumeMoves(current, eventLoop: group.next())
        if let seed = cluster.configuration.join, current.members.count == 1, current.member(cluster.nodeID)?.state == .joining {
            askToJoin(seed, attempt: 1, eventLoop: group.next())
        }
    }

    private func save(_ membership: Membership) {
        do {
            try membershipFile.save(membership)
        } catch {
            logger.error("could not save the cluster membership", metadata: ["error": "\(error)"])
        }
    }

    private func membershipChanged(from old: Membership, to new: Membership, eventLoop: any EventLoop) {
        guard let cluster else { return }
        save(new)
        let me = cluster.nodeID
        // Hints owed to nodes that are gone are owed to nobody: their keys have new owners.
        let file = hintFile
        hints.withLock { hints in
            for name in Array(hints.keys) where new.member(NodeID(name)) == nil {
                hints[name] = nil
                file.rewrite([], for: name)
            }
        }
        if old.member(me) != nil && new.member(me) == nil {
            logger.notice("this node has left the cluster")
            onLeft.withLock { $0 }?()
            return
        }
        if new.isSettled && old.servingNodes != new.servingNodes {
            // Give the new membership a moment to reach every node, then hand over what moved.
            let epoch = new.epoch
            eventLoop.scheduleTask(in: .seconds(2)) {
                self.cleanUp(epoch: epoch, eventLoop: eventLoop)
                // And compare with every peer now rather than at the next periodic repair: a key
                // whose owners changed gets its copies from whoever has them.
                for peer in cluster.peerIDs where cluster.isLive(peer) {
                    self.repair(from: peer, eventLoop: eventLoop).whenFailure { error in
                        self.logger.info("anti-entropy after a change failed", metadata: ["peer": "\(peer)", "error": "\(error)"])
                    }
                }
            }
        }
        resumeMoves(new, eventLoop: eventLoop)
    }

    /// Starts (or resumes, after a restart) this node's part in a change.
    private func resumeMoves(_ membership: Membership, eventLoop: any EventLoop) {
        guard let cluster, let state = membership.member(cluster.nodeID)?.state, state != .normal else { return }
        guard state == .leaving || membership.members.count > 1 else { return }
        let start = moves.withLock { moves -> Bool in
            defer { moves.streaming = true }
            return !moves.streaming
        }
        guard start else { return }
        let stream = state == .joining ? joinStream(eventLoop: eventLoop) : leaveStream(eventLoop: eventLoop)
        stream.whenComplete { result in
            self.moves.withLock { $0.streaming = false }
            if case .failure(let error) = result {
                self.logger.warning("membership move failed; retrying", metadata: ["error": "\(error)"])
                eventLoop.scheduleTask(in: .seconds(2)) { self.resumeMoves(cluster.membership, eventLoop: eventLoop) }
            }
        }
    }

    // MARK: Changes

    /// Makes `membership` current everywhere: sends it to every node of the old and new
    /// memberships (those that cannot be reached get it later from heartbeats), then adopts it.
    func propose(_ membership: Membership, eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        guard let cluster else { return eventLoop.makeSucceededVoidFuture() }
        let targets = Set(cluster.membership.members.map(\.id) + membership.members.map(\.id)).subtracting([cluster.nodeID])
        let pushes = targets.map { cluster.pushMembership(to: $0, membership).hop(to: eventLoop).recover { _ in false } }
        return EventLoopFuture.whenAllComplete(pushes, on: eventLoop).map { _ in
            cluster.adopt(membership)
        }
    }

    /// `STRATA.CLUSTER JOIN id host:port [http-port]`: admits a node as joining; succeeds with the
    /// new membership (the joiner takes it from the reply too).
    func admit(_ id: NodeID, host: String, port: Int, httpPort: Int?, eventLoop: any EventLoop) -> EventLoopFuture<Membership> {
        guard let cluster else { return eventLoop.makeFailedFuture(CommandError("ERR this node is not in a cluster")) }
        let current = cluster.membership
        if let member = current.member(id) {
            guard member.host == host && member.port == port else {
                return eventLoop.makeFailedFuture(
                    CommandError("ERR a member named \(id) already exists at \(member.host):\(member.port)"))
            }
            return eventLoop.makeSucceededFuture(current)  // asked again: already admitted
        }
        guard current.member(cluster.nodeID)?.state == .normal else {
            return eventLoop.makeFailedFuture(CommandError("ERR this node is not a normal member; ask another"))
        }
        return change(eventLoop: eventLoop) {
            current.with(Membership.Member(id: id, host: host, port: port, state: .joining, httpPort: httpPort))
        }
    }

    /// `STRATA.CLUSTER LEAVE id`: starts `id` leaving.
    func startLeave(_ id: NodeID, eventLoop: any EventLoop) -> EventLoopFuture<Membership> {
        guard let cluster else { return eventLoop.makeFailedFuture(CommandError("ERR this node is not in a cluster")) }
        let current = cluster.membership
        guard let member = current.member(id) else {
            return eventLoop.makeFailedFuture(CommandError("ERR \(id) is not a member of this cluster"))
        }
        if member.state == .leaving { return eventLoop.makeSucceededFuture(current) }
        guard cluster.isLive(id) else {
            return eventLoop.makeFailedFuture(
                CommandError("ERR \(id) is down and cannot hand over its ranges; STRATA.CLUSTER FORGET \(id) removes it"))
        }
        let remaining = current.futureNodes.count - 1
        guard remaining >= cluster.configuration.replicas else {
            return eventLoop.makeFailedFuture(
                CommandError("ERR \(id) cannot leave: \(remaining) node(s) would remain for --replicas \(cluster.configuration.replicas)"))
        }
        var leaving = member
        leaving.state = .leaving
        return change(eventLoop: eventLoop) { current.with(leaving) }
    }

    /// `STRATA.CLUSTER FORGET id`: removes a member that is gone for good (dead, or stuck joining
    /// or leaving). Its keys are copied again from their other owners by the anti-entropy that
    /// follows every change.
    func forget(_ id: NodeID, eventLoop: any EventLoop) -> EventLoopFuture<Membership> {
        guard let cluster else { return eventLoop.makeFailedFuture(CommandError("ERR this node is not in a cluster")) }
        let current = cluster.membership
        guard current.member(id) != nil else {
            return eventLoop.makeFailedFuture(CommandError("ERR \(id) is not a member of this cluster"))
        }
        guard id != cluster.nodeID else {
            return eventLoop.makeFailedFuture(CommandError("ERR a node cannot forget itself; use STRATA.CLUSTER LEAVE"))
        }
        guard !cluster.isLive(id) else {
            return eventLoop.makeFailedFuture(CommandError("ERR \(id) is up; use STRATA.CLUSTER LEAVE \(id) so it hands over its ranges"))
        }
        return change(eventLoop: eventLoop, evenIfMoving: true) { current.without(id) }
    }

    /// Runs one change at a time, and (unless `evenIfMoving`) only on a settled membership.
    private func change(eventLoop: any EventLoop, evenIfMoving: Bool = false, _ make: () -> Membership)
        -> EventLoopFuture<Membership>
    {
        guard let cluster else { return eventLoop.makeFailedFuture(CommandError("ERR this node is not in a cluster")) }
        let mayStart = moves.withLock { moves -> Bool in
            defer { moves.changing = true }
            return !moves.changing
        }
        guard mayStart && (evenIfMoving || cluster.membership.isSettled) else {
            if mayStart { moves.withLock { $0.changing = false } }
            return eventLoop.makeFailedFuture(
                CommandError("ERR a membership change is in progress (epoch \(cluster.epoch)); retry when it is done"))
        }
        let next = make().recordingHTTPPorts(knownHTTPPorts)
        return propose(next, eventLoop: eventLoop).map { next }.always { _ in
            self.moves.withLock { $0.changing = false }
        }
    }

    /// A joiner asks `seed` to admit it, again every second until it is a member.
    private func askToJoin(_ seed: (host: String, port: Int), attempt: Int, eventLoop: any EventLoop) {
        guard let cluster else { return }
        let me = cluster.configuration
        // The HTTP port goes along once bound, so service discovery lists the joiner at once.
        let http = httpPort > 0 ? [String(httpPort)] : []
        cluster.send(
            ["STRATA.CLUSTER", "JOIN", me.nodeID.name, "\(me.address.host):\(me.address.port)"] + http, toAddress: seed,
            timeout: Server.streamTimeout
        ).hop(to: eventLoop).whenComplete { result in
            if case .success(let reply) = result, let text = reply.string, let membership = Membership(encoded: text) {
                self.logger.notice("admitted to the cluster as joining", metadata: ["seed": "\(seed.host):\(seed.port)"])
                cluster.adopt(membership)
                return
            }
            if cluster.membership.members.count > 1 { return }
            let reason: String
            switch result {
            case .success(let reply): reason = reply.string ?? "unexpected reply"
            case .failure(let error): reason = "\(error)"
            }
            if attempt == 1 || attempt % 10 == 0 {
                self.logger.warning(
                    "waiting to be admitted to the cluster", metadata: ["seed": "\(seed.host):\(seed.port)", "reason": "\(reason)"])
            }
            eventLoop.scheduleTask(in: .seconds(1)) { self.askToJoin(seed, attempt: attempt + 1, eventLoop: eventLoop) }
        }
    }

    /// Makes sure `node` routes with `membership` (or newer) before this node streams with it.
    private func confirm(_ membership: Membership, with node: NodeID, eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        guard let cluster else { return eventLoop.makeSucceededVoidFuture() }
        return cluster.send(
            [ByteBuffer(string: "STRATA.MEMBERSHIP"), ByteBuffer(string: membership.encoded)], to: node
        ).hop(to: eventLoop).flatMapThrowing { reply in
            guard let epoch = reply.integer, epoch >= Int(membership.epoch) else {
                throw CommandError("\(node) did not take membership epoch \(membership.epoch): \(reply.string ?? "?")")
            }
        }
    }

    // MARK: Streams

    /// Pulls from every serving member the records this node will own, then becomes normal.
    private func joinStream(eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        guard let cluster else { return eventLoop.makeSucceededVoidFuture() }
        let membership = cluster.membership
        let sources = membership.servingNodes.filter { $0 != cluster.nodeID }
        logger.notice("joining: pulling owned ranges", metadata: ["from": "\(sources.map(\.name))"])
        var chain = eventLoop.makeSucceededFuture(0)
        for source in sources {
            chain = chain.flatMap { total in
                self.pullForMove(from: source, membership: membership, attempts: 5, eventLoop: eventLoop).map { total + $0 }
            }
        }
        return chain.flatMap { total in
            let current = cluster.membership
            guard var me = current.member(cluster.nodeID), me.state == .joining else { return eventLoop.makeSucceededVoidFuture() }
            self.logger.notice("joined: ranges received", metadata: ["records": "\(total)"])
            me.state = .normal
            return self.propose(current.with(me).recordingHTTPPorts(self.knownHTTPPorts), eventLoop: eventLoop)
        }
    }

    private func pullForMove(from source: NodeID, membership: Membership, attempts: Int, eventLoop: any EventLoop)
        -> EventLoopFuture<Int>
    {
        confirm(membership, with: source, eventLoop: eventLoop).flatMap {
            self.pull(from: source, counter: self.metrics.rebalanced, eventLoop: eventLoop)
        }.flatMapError { error in
            guard attempts > 1 else {
                // A member that stays unreachable: its replicas hold its data; repair fills gaps.
                self.logger.warning("joining: could not pull from a member", metadata: ["member": "\(source)", "error": "\(error)"])
                return eventLoop.makeSucceededFuture(0)
            }
            return eventLoop.scheduleTask(in: .seconds(1)) {}.futureResult.flatMap {
                self.pullForMove(from: source, membership: membership, attempts: attempts - 1, eventLoop: eventLoop)
            }
        }
    }

    /// Pushes every record to its owners on the ring without this node, then leaves.
    private func leaveStream(eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        guard let cluster else { return eventLoop.makeSucceededVoidFuture() }
        let membership = cluster.membership
        let others = membership.members.map(\.id).filter { $0 != cluster.nodeID }
        logger.notice("leaving: handing ranges to their next owners")
        // Every live member must write to the next owners too before the scan starts.
        let confirmations = others.filter(cluster.isLive).map { confirm(membership, with: $0, eventLoop: eventLoop) }
        return EventLoopFuture.andAllSucceed(confirmations, on: eventLoop).flatMap {
            self.handOver(from: TieredStore.RecordCursor.start, epoch: nil, moved: 0, eventLoop: eventLoop) { key in
                cluster.futureOwners(of: key).filter { $0 != cluster.nodeID }
            }
        }.flatMap { moved in
            self.logger.notice("left: ranges handed over", metadata: ["records": "\(moved)"])
            let next = cluster.membership.without(cluster.nodeID).recordingHTTPPorts(self.knownHTTPPorts)
            return self.propose(next, eventLoop: eventLoop)
        }
    }

    /// After a change: hands the records this node no longer owns to their owners, then drops them.
    private func cleanUp(epoch: UInt64, eventLoop: any EventLoop) {
        guard let cluster, cluster.epoch == epoch, cluster.membership.member(cluster.nodeID)?.state == .normal else { return }
        let start = moves.withLock { moves -> Bool in
            defer { moves.cleanedEpoch = max(moves.cleanedEpoch, epoch) }
            return moves.cleanedEpoch < epoch
        }
        guard start else { return }
        let me = cluster.nodeID
        handOver(from: TieredStore.RecordCursor.start, epoch: epoch, moved: 0, eventLoop: eventLoop) { key in
            let owners = cluster.allOwners(of: key)
            return owners.contains(me) ? [] : owners
        }.whenComplete { result in
            switch result {
            case .success(let moved):
                self.logger.notice("clean-up after membership change", metadata: ["epoch": "\(epoch)", "records handed over": "\(moved)"])
            case .failure(let error):
                self.logger.warning("clean-up after membership change stopped", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Scans the store from `cursor`, sends each record to `targets(key)` (`STRATA.APPLY`), and
    /// when `epoch` is set (clean-up) drops the copies every target took. Stops early if the
    /// membership moves past `epoch`. Succeeds with the number of records handed over.
    private func handOver(
        from cursor: TieredStore.RecordCursor, epoch: UInt64?, moved: Int, eventLoop: any EventLoop,
        targets: @escaping @Sendable ([UInt8]) -> [NodeID]
    ) -> EventLoopFuture<Int> {
        guard let cluster else { return eventLoop.makeSucceededFuture(moved) }
        if let epoch, cluster.epoch != epoch { return eventLoop.makeSucceededFuture(moved) }
        let store = self.store
        return diskPool.runIfActive(eventLoop: eventLoop) {
            try store.scanRecords(from: cursor, limit: Server.streamBatch)
        }.flatMap { records, next in
            var batches: [NodeID: [([UInt8], [UInt8])]] = [:]
            var routes: [[UInt8]: [NodeID]] = [:]
            for (key, record) in records {
                let to = targets(key)
                guard !to.isEmpty else { continue }
                routes[key] = to
                for node in to { batches[node, default: []].append((key, record)) }
            }
            let destinations = routes
            let sends = batches.map { node, pairs -> EventLoopFuture<(NodeID, Bool)> in
                var arguments = [ByteBuffer(string: "STRATA.APPLY")]
                arguments.reserveCapacity(1 + pairs.count * 2)
                for (key, record) in pairs {
                    arguments.append(ByteBuffer(bytes: key))
                    arguments.append(ByteBuffer(bytes: record))
                }
                return self.sendWithRetries(arguments, to: node, attempts: 3, eventLoop: eventLoop).map { (node, $0) }
            }
            return EventLoopFuture.whenAllSucceed(sends, on: eventLoop).flatMap { results in
                let took = Set(results.filter(\.1).map(\.0))
                let handed = destinations.filter { _, to in to.allSatisfy(took.contains) }.map(\.key)
                self.metrics.rebalanced.increment(by: Int64(handed.count))
                for (node, ok) in results where !ok {
                    self.logger.warning("could not hand records to their owner", metadata: ["owner": "\(node)"])
                }
                let dropped: EventLoopFuture<Void>
                if epoch != nil {
                    // Keys a down owner still waits for stay until their hint is handed off.
                    let waiting = self.hints.withLock { hints in Set(hints.values.joined()) }
                    let drop = handed.filter { !waiting.contains($0) }
                    dropped = self.diskPool.runIfActive(eventLoop: eventLoop) {
                        for key in drop { try? store.discard(key) }
                    }
                } else {
                    dropped = eventLoop.makeSucceededVoidFuture()
                }
                return dropped.flatMap {
                    guard let next else { return eventLoop.makeSucceededFuture(moved + handed.count) }
                    return self.handOver(
                        from: next, epoch: epoch, moved: moved + handed.count, eventLoop: eventLoop, targets: targets)
                }
            }
        }
    }

    /// Sends a stream batch; succeeds with whether the node took it.
    private func sendWithRetries(_ arguments: [ByteBuffer], to node: NodeID, attempts: Int, eventLoop: any EventLoop)
        -> EventLoopFuture<Bool>
    {
        guard let cluster else { return eventLoop.makeSucceededFuture(false) }
        return cluster.send(arguments, to: node, timeout: Server.streamTimeout).hop(to: eventLoop).map { $0.kind == .integer }
            .recover { _ in false }.flatMap { ok in
                guard !ok, attempts > 1 else { return eventLoop.makeSucceededFuture(ok) }
                return eventLoop.scheduleTask(in: .milliseconds(500)) {}.futureResult.flatMap {
                    self.sendWithRetries(arguments, to: node, attempts: attempts - 1, eventLoop: eventLoop)
                }
            }
    }
}
