import NIOCore

/// What peers said about their HTTP ports.
struct HTTPPortReports: Sendable {
    var ports: [NodeID: Int] = [:]
    /// Peers that came up again since they reported (they may have restarted on another port).
    var stale: Set<NodeID> = []
}

/// Where the members serve `/metrics`, so that any node can tell Prometheus what to scrape.
///
/// A joiner brings its HTTP port in its join request, and every membership change records the
/// ports known to the node making it; nodes started from `--peers` learn each other's by asking
/// (`STRATA.CLUSTER HTTPPORT`) with their first heartbeats, and ask again when a peer comes back.
extension Cluster {
    /// Asks every member whose HTTP port has not been reported yet, or may have changed.
    func askHTTPPorts(_ membership: Membership) {
        let reports = httpPortReports.withLock { reports in
            // A node that left may come back on another port: forget what it said.
            reports.ports = reports.ports.filter { id, _ in membership.member(id) != nil }
            return reports
        }
        for member in membership.members
        where member.id != nodeID && (reports.ports[member.id] == nil || reports.stale.contains(member.id)) {
            let id = member.id
            send([ByteBuffer(string: "STRATA.CLUSTER"), ByteBuffer(string: "HTTPPORT")], to: id).whenSuccess {
                [weak self] reply in
                guard let port = reply.integer, (1...65535).contains(port) else { return }
                self?.httpPortReports.withLock { reports in
                    reports.ports[id] = port
                    reports.stale.remove(id)
                }
            }
        }
    }

    /// The peers' HTTP ports as they reported them (fresher than the membership's).
    public var peerHTTPPorts: [NodeID: Int] { httpPortReports.withLock { $0.ports } }
}
