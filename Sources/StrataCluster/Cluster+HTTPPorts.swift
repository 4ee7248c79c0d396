import NIOCore

/// Where the members serve `/metrics`, so that any node can tell Prometheus what to scrape.
///
/// A joiner brings its HTTP port in its join request, and every membership change records the
/// ports known to the node making it; nodes started from `--peers` learn each other's by asking
/// (`STRATA.CLUSTER HTTPPORT`) with their first heartbeats.
extension Cluster {
    /// Asks every member whose HTTP port has not been reported yet.
    func askHTTPPorts(_ membership: Membership) {
        let reported = reportedHTTPPorts.withLockedValue { $0 }
        for member in membership.members where member.id != nodeID && reported[member.id] == nil {
            let id = member.id
            send([ByteBuffer(string: "STRATA.CLUSTER"), ByteBuffer(string: "HTTPPORT")], to: id).whenSuccess {
                [weak self] reply in
                guard let port = reply.integer, (1...65535).contains(port) else { return }
                self?.reportedHTTPPorts.withLockedValue { $0[id] = port }
            }
        }
    }

    /// The peers' HTTP ports as reported since they came up (fresher than the membership's).
    public var peerHTTPPorts: [NodeID: Int] { reportedHTTPPorts.withLockedValue { $0 } }
}
