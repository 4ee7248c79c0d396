import Foundation
import StrataCluster

/// One target group of Prometheus HTTP service discovery (`http_sd_configs`).
struct DiscoveryGroup: Encodable, Equatable {
    var targets: [String]
    var labels: [String: String]
}

/// `GET /sd`: the metrics addresses of the cluster's members, in the JSON Prometheus' HTTP service
/// discovery reads, so that Prometheus follows joins and leaves.
///
/// Every member is listed (normal, joining and leaving), each in a group of its own labelled
/// `node`, with `__meta_strata_state` (its membership state) and `__meta_strata_self` ("true" for
/// the node that answered) for relabelling. A member leaves the list once it has left, and a
/// member that crashed stays in it, so Prometheus alerts on a crash but not on a leave. A member
/// whose HTTP port this node has not learned yet is left out until it has. A node outside any
/// cluster lists itself alone, without labels (it cannot leave, so nothing needs dropping).
extension Server {
    func discoveryGroups() -> [DiscoveryGroup] {
        guard let cluster else {
            let bind = configuration.bind
            let host = bind == "0.0.0.0" || bind == "::" ? "127.0.0.1" : bind
            return [DiscoveryGroup(targets: ["\(host):\(httpPort)"], labels: [:])]
        }
        let known = cluster.knownHTTPPorts
        return cluster.membership.members.compactMap { member in
            guard let port = known[member.id] ?? member.httpPort else { return nil }
            return DiscoveryGroup(
                targets: ["\(member.host):\(port)"],
                labels: [
                    "node": member.id.name,
                    "__meta_strata_state": member.state.rawValue,
                    "__meta_strata_self": member.id == cluster.nodeID ? "true" : "false",
                ])
        }
    }

    /// `discoveryGroups()` as JSON.
    func discoveryJSON() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(discoveryGroups())) ?? Data("[]".utf8)
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}
