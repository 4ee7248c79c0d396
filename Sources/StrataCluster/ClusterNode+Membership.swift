import NIOCore
import RESP
import StrataStore

/// What membership work this node has under way.
struct Moves: Sendable {
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
extension ClusterNode {
    static let streamTimeout: TimeAmount = .seconds(10)
    static let streamBatch = 500
    /// How long after a change settles before clean-up starts (the membership reaches every node).
    static let settleDelay: Duration = .seconds(2)
    static let joinRetryDelay: Duration = .seconds(1)
    static let pullAttempts = 5
    static let sendAttempts = 3
    static let sendRetryDelay: Duration = .milliseconds(500)

    /// Starts membership work: saving every new membership, and signalling the run loop to
    /// stream when this node joins or leaves and to clean up after a change.
    func startMembership() {
        cluster.onMembershipChange { [weak self] old, new in
            self?.membershipChanged(from: old, to: new)
        }
        save(cluster.membership)
        moveSignal.continuation.yield()  // resumes a join or leave a restart interrupted
    }

    /// The membership work of `run`: this node's part in a change, clean-up after each settled
    /// change, and (for a node started with `--join`) asking to be admitted.
    func runMembershipWork(in tasks: inout TaskGroup<Void>) {
        tasks.addTask {
            for await _ in self.moveSignal.stream { await self.runMove() }
        }
        tasks.addTask {
            for await epoch in self.cleanUpSignal.stream {
                // Give the new membership a moment to reach every node, then hand over what moved.
                do { try await Task.sleep(for: ClusterNode.settleDelay) } catch { return }
                await self.cleanUp(epoch: epoch)
                // And compare with every peer now rather than at the next periodic repair: a key
                // whose owners changed gets its copies from whoever has them.
                for peer in self.cluster.peerIDs where self.cluster.isLive(peer) {
                    do {
                        _ = try await self.repair(from: peer)
                    } catch {
                        self.logger.info("anti-entropy after a change failed", metadata: ["peer": "\(peer)", "error": "\(error)"])
                    }
                }
            }
        }
        let current = cluster.membership
        if let seed = cluster.configuration.join, current.members.count == 1, current.member(nodeID)?.state == .joining {
            tasks.addTask { await self.askToJoin(seed) }
        }
    }

    private func save(_ membership: Membership) {
        let file = membershipFile
        files.perform("save the cluster membership", file: file.path) { try file.save(membership) }
    }

    private func membershipChanged(from old: Membership, to new: Membership) {
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
            cleanUpSignal.continuation.yield(new.epoch)
        }
        moveSignal.continuation.yield()
    }

    /// Runs (or resumes, after a restart) this node's part in a change, retrying until it is done.
    private func runMove() async {
        while !Task.isCancelled {
            let membership = cluster.membership
            guard let state = membership.member(nodeID)?.state, state != .normal else { return }
            guard state == .leaving || membership.members.count > 1 else { return }
            do {
                if state == .joining { try await joinStream() } else { try await leaveStream() }
                return
            } catch {
                logger.warning("membership move failed; retrying", metadata: ["error": "\(error)"])
                do { try await Task.sleep(for: ClusterNode.retryDelay) } catch { return }
            }
        }
    }

    // MARK: Changes

    /// Makes `membership` current everywhere: sends it to every node of the old and new
    /// memberships (those that cannot be reached get it later from heartbeats), then adopts it.
    func propose(_ membership: Membership, eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        let targets = Set(cluster.membership.members.map(\.id) + membership.members.map(\.id)).subtracting([cluster.nodeID])
        let pushes = targets.map { cluster.pushMembership(to: $0, membership).hop(to: eventLoop).recover { _ in false } }
        return EventLoopFuture.whenAllComplete(pushes, on: eventLoop).map { _ in
            self.cluster.adopt(membership)
        }
    }

    /// `STRATA.CLUSTER JOIN id host:port [http-port]`: admits a node as joining; succeeds with the
    /// new membership (the joiner takes it from the reply too).
    public func admit(_ id: NodeID, host: String, port: Int, httpPort: Int?, eventLoop: any EventLoop)
        -> EventLoopFuture<Membership>
    {
        let current = cluster.membership
        if let member = current.member(id) {
            guard member.host == host && member.port == port else {
                return eventLoop.makeFailedFuture(
                    ClusterError("ERR a member named \(id) already exists at \(member.host):\(member.port)"))
            }
            return eventLoop.makeSucceededFuture(current)  // asked again: already admitted
        }
        guard current.member(cluster.nodeID)?.state == .normal else {
            return eventLoop.makeFailedFuture(ClusterError("ERR this node is not a normal member; ask another"))
        }
        return change(eventLoop: eventLoop) {
            current.with(Membership.Member(id: id, host: host, port: port, state: .joining, httpPort: httpPort))
        }
    }

    /// `STRATA.CLUSTER LEAVE id`: starts `id` leaving.
    public func startLeave(_ id: NodeID, eventLoop: any EventLoop) -> EventLoopFuture<Membership> {
        let current = cluster.membership
        guard let member = current.member(id) else {
            return eventLoop.makeFailedFuture(ClusterError("ERR \(id) is not a member of this cluster"))
        }
        if member.state == .leaving { return eventLoop.makeSucceededFuture(current) }
        guard cluster.isLive(id) else {
            return eventLoop.makeFailedFuture(
                ClusterError("ERR \(id) is down and cannot hand over its ranges; STRATA.CLUSTER FORGET \(id) removes it"))
        }
        let remaining = current.futureNodes.count - 1
        guard remaining >= cluster.configuration.replicas else {
            return eventLoop.makeFailedFuture(
                ClusterError("ERR \(id) cannot leave: \(remaining) node(s) would remain for --replicas \(cluster.configuration.replicas)"))
        }
        var leaving = member
        leaving.state = .leaving
        return change(eventLoop: eventLoop) { current.with(leaving) }
    }

    /// `STRATA.CLUSTER FORGET id`: removes a member that is gone for good (dead, or stuck joining
    /// or leaving). Its keys are copied again from their other owners by the anti-entropy that
    /// follows every change.
    public func forget(_ id: NodeID, eventLoop: any EventLoop) -> EventLoopFuture<Membership> {
        let current = cluster.membership
        guard current.member(id) != nil else {
            return eventLoop.makeFailedFuture(ClusterError("ERR \(id) is not a member of this cluster"))
        }
        guard id != cluster.nodeID else {
            return eventLoop.makeFailedFuture(ClusterError("ERR a node cannot forget itself; use STRATA.CLUSTER LEAVE"))
        }
        guard !cluster.isLive(id) else {
            return eventLoop.makeFailedFuture(ClusterError("ERR \(id) is up; use STRATA.CLUSTER LEAVE \(id) so it hands over its ranges"))
        }
        return change(eventLoop: eventLoop, evenIfMoving: true) { current.without(id) }
    }

    /// Runs one change at a time, and (unless `evenIfMoving`) only on a settled membership.
    private func change(eventLoop: any EventLoop, evenIfMoving: Bool = false, _ make: () -> Membership)
        -> EventLoopFuture<Membership>
    {
        let mayStart = moves.withLock { moves -> Bool in
            defer { moves.changing = true }
            return !moves.changing
        }
        guard mayStart && (evenIfMoving || cluster.membership.isSettled) else {
            if mayStart { moves.withLock { $0.changing = false } }
            return eventLoop.makeFailedFuture(
                ClusterError("ERR a membership change is in progress (epoch \(cluster.epoch)); retry when it is done"))
        }
        let next = make().recordingHTTPPorts(knownHTTPPorts)
        return propose(next, eventLoop: eventLoop).map { next }.always { _ in
            self.moves.withLock { $0.changing = false }
        }
    }

    /// A joiner asks `seed` to admit it, again every second until it is a member.
    private func askToJoin(_ seed: (host: String, port: Int)) async {
        let me = cluster.configuration
        var attempt = 1
        while !Task.isCancelled && cluster.membership.members.count <= 1 {
            let reason: String
            do {
                // The HTTP port goes along once bound, so service discovery lists the joiner at once.
                let http = httpPort > 0 ? [String(httpPort)] : []
                let reply = try await cluster.send(
                    ["STRATA.CLUSTER", "JOIN", me.nodeID.name, "\(me.address.host):\(me.address.port)"] + http, toAddress: seed,
                    timeout: ClusterNode.streamTimeout
                ).get()
                if let text = reply.string, let membership = Membership(encoded: text) {
                    logger.notice("admitted to the cluster as joining", metadata: ["seed": "\(seed.host):\(seed.port)"])
                    cluster.adopt(membership)
                    return
                }
                reason = reply.string ?? "unexpected reply"
            } catch {
                reason = "\(error)"
            }
            if cluster.membership.members.count > 1 { return }
            if attempt == 1 || attempt % 10 == 0 {
                logger.warning(
                    "waiting to be admitted to the cluster", metadata: ["seed": "\(seed.host):\(seed.port)", "reason": "\(reason)"])
            }
            attempt += 1
            do { try await Task.sleep(for: ClusterNode.joinRetryDelay) } catch { return }
        }
    }

    /// Makes sure `node` routes with `membership` (or newer) before this node streams with it.
    private func confirm(_ membership: Membership, with node: NodeID) async throws {
        let reply = try await cluster.send(
            [ByteBuffer(string: "STRATA.MEMBERSHIP"), ByteBuffer(string: membership.encoded)], to: node
        ).get()
        guard let epoch = reply.integer, epoch >= Int(membership.epoch) else {
            throw ClusterError("\(node) did not take membership epoch \(membership.epoch): \(reply.string ?? "?")")
        }
    }

    /// Makes `membership` current everywhere, as `propose(_:eventLoop:)` does.
    private func propose(_ membership: Membership) async {
        let targets = Set(cluster.membership.members.map(\.id) + membership.members.map(\.id)).subtracting([nodeID])
        await withTaskGroup(of: Void.self) { pushes in
            for target in targets {
                // A node that cannot be reached now learns the membership from heartbeats.
                pushes.addTask { _ = try? await self.cluster.pushMembership(to: target, membership).get() }
            }
        }
        cluster.adopt(membership)
    }

    // MARK: Streams

    /// Pulls from every serving member the records this node will own, then becomes normal.
    private func joinStream() async throws {
        let membership = cluster.membership
        let sources = membership.servingNodes.filter { $0 != nodeID }
        logger.notice("joining: pulling owned ranges", metadata: ["from": "\(sources.map(\.name))"])
        var total = 0
        for source in sources { total += await pullForMove(from: source, membership: membership) }
        let current = cluster.membership
        guard var me = current.member(nodeID), me.state == .joining else { return }
        logger.notice("joined: ranges received", metadata: ["records": "\(total)"])
        me.state = .normal
        await propose(current.with(me).recordingHTTPPorts(knownHTTPPorts))
    }

    private func pullForMove(from source: NodeID, membership: Membership) async -> Int {
        for attempt in 1...ClusterNode.pullAttempts {
            do {
                try await confirm(membership, with: source)
                return try await pull(from: source, counter: metrics.rebalanced)
            } catch {
                guard attempt < ClusterNode.pullAttempts else {
                    // A member that stays unreachable: its replicas hold its data; repair fills gaps.
                    logger.warning("joining: could not pull from a member", metadata: ["member": "\(source)", "error": "\(error)"])
                    return 0
                }
                do { try await Task.sleep(for: ClusterNode.joinRetryDelay) } catch { return 0 }
            }
        }
        return 0
    }

    /// Pushes every record to its owners on the ring without this node, then leaves.
    private func leaveStream() async throws {
        let (cluster, me) = (self.cluster, nodeID)
        let membership = cluster.membership
        logger.notice("leaving: handing ranges to their next owners")
        // Every live member must write to the next owners too before the scan starts.
        for node in membership.members.map(\.id) where node != me && cluster.isLive(node) {
            try await confirm(membership, with: node)
        }
        let moved = try await handOver(epoch: nil) { key in cluster.futureOwners(of: key).filter { $0 != me } }
        logger.notice("left: ranges handed over", metadata: ["records": "\(moved)"])
        await propose(cluster.membership.without(me).recordingHTTPPorts(knownHTTPPorts))
    }

    /// After a change: hands the records this node no longer owns to their owners, then drops them.
    private func cleanUp(epoch: UInt64) async {
        let (cluster, me) = (self.cluster, nodeID)
        guard cluster.epoch == epoch, cluster.membership.member(me)?.state == .normal else { return }
        let start = moves.withLock { moves -> Bool in
            defer { moves.cleanedEpoch = max(moves.cleanedEpoch, epoch) }
            return moves.cleanedEpoch < epoch
        }
        guard start else { return }
        do {
            let moved = try await handOver(epoch: epoch) { key in
                let owners = cluster.allOwners(of: key)
                return owners.contains(me) ? [] : owners
            }
            logger.notice("clean-up after membership change", metadata: ["epoch": "\(epoch)", "records handed over": "\(moved)"])
        } catch {
            logger.warning("clean-up after membership change stopped", metadata: ["error": "\(error)"])
        }
    }

    /// Scans the store batch by batch, sends each record to `targets(key)` (`STRATA.APPLY`), and
    /// when `epoch` is set (clean-up) drops the copies every target took. Stops early if the
    /// membership moves past `epoch`. Returns the number of records handed over.
    private func handOver(epoch: UInt64?, targets: @escaping @Sendable ([UInt8]) -> [NodeID]) async throws -> Int {
        let store = self.store
        var cursor = TieredStore.RecordCursor.start
        var moved = 0
        while true {
            if let epoch, cluster.epoch != epoch { return moved }
            let from = cursor
            let (records, next) = try await pool.runIfActive { try store.scanRecords(from: from, limit: ClusterNode.streamBatch) }
            var batches: [NodeID: [([UInt8], [UInt8])]] = [:]
            var routes: [[UInt8]: [NodeID]] = [:]
            for (key, record) in records {
                let to = targets(key)
                guard !to.isEmpty else { continue }
                routes[key] = to
                for node in to { batches[node, default: []].append((key, record)) }
            }
            let results = await withTaskGroup(of: (NodeID, Bool).self) { sends in
                for (node, pairs) in batches {
                    var arguments = [ByteBuffer(string: "STRATA.APPLY")]
                    arguments.reserveCapacity(1 + pairs.count * 2)
                    for (key, record) in pairs {
                        arguments.append(ByteBuffer(bytes: key))
                        arguments.append(ByteBuffer(bytes: record))
                    }
                    let request = arguments
                    sends.addTask { (node, await self.sendWithRetries(request, to: node)) }
                }
                var results: [(NodeID, Bool)] = []
                for await result in sends { results.append(result) }
                return results
            }
            let took = Set(results.filter(\.1).map(\.0))
            let handed = routes.filter { _, to in to.allSatisfy(took.contains) }.map(\.key)
            metrics.rebalanced.increment(by: Int64(handed.count))
            for (node, ok) in results where !ok {
                logger.warning("could not hand records to their owner", metadata: ["owner": "\(node)"])
            }
            if epoch != nil {
                // Keys a down owner still waits for stay until their hint is handed off.
                let waiting = hints.withLock { hints in Set(hints.values.joined()) }
                let drop = handed.filter { !waiting.contains($0) }
                let failed = try await pool.runIfActive { () -> Int in
                    var failed = 0
                    for key in drop {
                        do { try store.discard(key) } catch { failed += 1 }  // kept: a later clean-up tries again
                    }
                    return failed
                }
                if failed > 0 { logger.warning("could not drop handed-over records", metadata: ["records": "\(failed)"]) }
            }
            moved += handed.count
            guard let next else { return moved }
            cursor = next
        }
    }

    /// Sends a stream batch, retrying; returns whether the node took it.
    private func sendWithRetries(_ arguments: [ByteBuffer], to node: NodeID) async -> Bool {
        for attempt in 1...ClusterNode.sendAttempts {
            // A failed send is retried, then reported by the caller as not taken.
            if let reply = try? await cluster.send(arguments, to: node, timeout: ClusterNode.streamTimeout).get(),
                reply.kind == .integer
            {
                return true
            }
            guard attempt < ClusterNode.sendAttempts else { break }
            do { try await Task.sleep(for: ClusterNode.sendRetryDelay) } catch { break }
        }
        return false
    }
}
