/// Who is in the cluster, and which of them are arriving or going: the input to the ring.
///
/// Every change (a node joining, a joined node becoming normal, a node leaving, a node gone)
/// makes a new membership with the next `epoch`. Nodes adopt a membership only if its epoch is
/// higher than theirs, and gossip epochs with their heartbeats, so the newest one reaches every
/// node, including one that was down when it was made. Two memberships with the same epoch and
/// different members (two changes started at once on different nodes) are ordered by their
/// encoding, so every node still settles on the same one; the change that lost is retried by
/// whoever asked for it.
public struct Membership: Sendable, Equatable {
    public struct Member: Sendable, Equatable {
        public enum State: String, Sendable {
            /// Owns its ranges.
            case normal
            /// Receiving the ranges it will own; old owners still serve them.
            case joining
            /// Sending its ranges to their next owners; still serves them until it is gone.
            case leaving
        }

        public var id: NodeID
        public var host: String
        public var port: Int
        public var state: State
        /// The node's HTTP port (`/metrics`), for service discovery; nil where not known yet (a
        /// membership written before nodes recorded it, or a peer from `--peers` not asked yet).
        public var httpPort: Int?

        public init(id: NodeID, host: String, port: Int, state: State = .normal, httpPort: Int? = nil) {
            self.id = id
            self.host = host
            self.port = port
            self.state = state
            self.httpPort = httpPort
        }
    }

    public var epoch: UInt64
    /// Sorted by id.
    public private(set) var members: [Member]

    public init(epoch: UInt64, members: [Member]) {
        self.epoch = epoch
        var byID: [NodeID: Member] = [:]
        for member in members { byID[member.id] = member }
        self.members = byID.values.sorted { $0.id < $1.id }
    }

    public func member(_ id: NodeID) -> Member? { members.first { $0.id == id } }

    /// Nodes that serve reads and coordinate writes now: normal and leaving ones.
    public var servingNodes: [NodeID] { members.filter { $0.state != .joining }.map(\.id) }
    /// Nodes that will own ranges once every change in progress is done: normal and joining ones.
    public var futureNodes: [NodeID] { members.filter { $0.state != .leaving }.map(\.id) }
    /// Whether no node is joining or leaving.
    public var isSettled: Bool { members.allSatisfy { $0.state == .normal } }

    /// This membership with `member` added or replaced, at the next epoch.
    public func with(_ member: Member) -> Membership {
        Membership(epoch: epoch + 1, members: members.filter { $0.id != member.id } + [member])
    }

    /// This membership without `id`, at the next epoch.
    public func without(_ id: NodeID) -> Membership {
        Membership(epoch: epoch + 1, members: members.filter { $0.id != id })
    }

    /// This membership, at the same epoch, with the HTTP ports in `ports` recorded (for a change
    /// about to be proposed: what this node learned travels with it and is saved everywhere).
    public func recordingHTTPPorts(_ ports: [NodeID: Int]) -> Membership {
        Membership(
            epoch: epoch,
            members: members.map { member in
                var member = member
                if let port = ports[member.id] { member.httpPort = port }
                return member
            })
    }

    /// Whether this membership should replace `other`: a higher epoch, or the same epoch and a
    /// higher encoding (so that every node breaks a tie the same way).
    public func supersedes(_ other: Membership) -> Bool {
        if epoch != other.epoch { return epoch > other.epoch }
        return self != other && encoded > other.encoded
    }

    /// Text form, for peers and the data directory: a header line, `epoch N`, then one line per
    /// member, `member<TAB>id<TAB>host<TAB>port<TAB>state`, followed by `<TAB>http-port` when it
    /// is known (text without it, from an older node, still parses).
    public var encoded: String {
        var text = "strata-membership 1\nepoch \(epoch)\n"
        for m in members {
            text += "member\t\(m.id.name)\t\(m.host)\t\(m.port)\t\(m.state.rawValue)"
            if let http = m.httpPort { text += "\t\(http)" }
            text += "\n"
        }
        return text
    }

    /// Parses `encoded`; nil if it is not a membership.
    public init?(encoded text: String) {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: true)[...]
        guard lines.popFirst() == "strata-membership 1", let epochLine = lines.popFirst(), epochLine.hasPrefix("epoch "),
            let epoch = UInt64(epochLine.dropFirst(6))
        else { return nil }
        var members: [Member] = []
        for line in lines {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard fields.count == 5 || fields.count == 6, fields[0] == "member", Membership.isValidName(String(fields[1])),
                let port = Int(fields[3]), (1...65535).contains(port), let state = Member.State(rawValue: String(fields[4]))
            else { return nil }
            var httpPort: Int?
            if fields.count == 6 {
                guard let http = Int(fields[5]), (1...65535).contains(http) else { return nil }
                httpPort = http
            }
            members.append(Member(id: NodeID(String(fields[1])), host: String(fields[2]), port: port, state: state, httpPort: httpPort))
        }
        self.init(epoch: epoch, members: members)
    }

    /// Node ids: 1 to 64 characters, none of them whitespace or control characters.
    public static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 64 && name.unicodeScalars.allSatisfy { $0.value > 32 && $0.value != 127 }
    }
}
