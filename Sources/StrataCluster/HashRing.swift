import StrataStore

/// A node's identity on the ring: its `--node-id`.
public struct NodeID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let name: String

    public init(_ name: String) {
        self.name = name
    }

    public var description: String { name }

    public static func < (a: NodeID, b: NodeID) -> Bool { a.name < b.name }
}

/// The consistent-hash ring: which nodes own a key.
///
/// Each node places `virtualNodes` tokens on a 64-bit ring, token `i` of node `n` at
/// `XXH64(n's name, seed: i)`. A key's position is probed `probes` times: probe `j` is
/// `splitmix64(XXH64(key) + j * 0x9E3779B97F4A7C15)`; each probe meets the first token at or after
/// it (clockwise, wrapping), and the probe whose token is nearest wins. The key's owners are the
/// winning token's node, then the next distinct nodes clockwise from that token, skipping nodes
/// that are not live.
///
/// Why probes (multi-probe consistent hashing, Appleton and O'Reilly, 2015): with 128 tokens per
/// node a plain ring leaves the most loaded of 10 nodes about 14% above the mean (a node's share is
/// a sum of 128 random arcs); eight probes bring it to about 5%, the same as some thousands of
/// tokens would, while a key still only ever moves to a node that joins (or from one that
/// leaves), so adding an 11th node moves close to 1/11 of the keys. The hash is `StableHash`
/// (XXH64), identical on every node; `HashRingTests` pins it with vectors computed by an
/// independent implementation.
public struct HashRing: Sendable {
    /// The members, sorted by name.
    public let nodes: [NodeID]
    public let virtualNodes: Int
    public let probes: Int
    private let tokens: [UInt64]
    private let tokenNodes: [Int32]

    public init(nodes: [NodeID], virtualNodes: Int = 128, probes: Int = 8) {
        precondition(virtualNodes > 0 && probes > 0)
        let members = Array(Set(nodes)).sorted()
        var placed: [(UInt64, Int32)] = []
        placed.reserveCapacity(members.count * virtualNodes)
        for (index, node) in members.enumerated() {
            let name = Array(node.name.utf8)
            for i in 0..<virtualNodes {
                placed.append((HashRing.token(name, i), Int32(index)))
            }
        }
        placed.sort { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
        self.nodes = members
        self.virtualNodes = virtualNodes
        self.probes = probes
        self.tokens = placed.map(\.0)
        self.tokenNodes = placed.map(\.1)
    }

    /// Token `index` of the node named by `name`.
    static func token(_ name: [UInt8], _ index: Int) -> UInt64 {
        StableHash.hash(name, seed: UInt64(index))
    }

    /// Probe `j` of a key whose hash is `keyHash` (splitmix64's finaliser).
    static func probe(_ keyHash: UInt64, _ j: Int) -> UInt64 {
        var z = keyHash &+ UInt64(j) &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The index of the first token at or after `position`, wrapping to 0.
    private func successor(_ position: UInt64) -> Int {
        var low = 0
        var high = tokens.count
        while low < high {
            let mid = (low + high) / 2
            if tokens[mid] < position { low = mid + 1 } else { high = mid }
        }
        return low == tokens.count ? 0 : low
    }

    /// The token the key lands on: the nearest over all probes.
    func primaryToken(keyHash: UInt64) -> Int {
        var best = 0
        var bestDistance = UInt64.max
        for j in 0..<probes {
            let position = HashRing.probe(keyHash, j)
            let t = successor(position)
            let distance = tokens[t] &- position  // wraps correctly past the top of the ring
            if distance < bestDistance {
                bestDistance = distance
                best = t
            }
        }
        return best
    }

    /// The index in `nodes` of the key's coordinator when the nodes marked in `live` (indexed as
    /// `nodes`) are up: the first of them clockwise from the key's token, which is its first live
    /// owner, or the stand-in when every owner is down. Allocates nothing (cluster-wide counts
    /// call it once per key). nil if no node is live.
    public func coordinator(keyHash: UInt64, live: [Bool]) -> Int? {
        guard !tokens.isEmpty else { return nil }
        var t = primaryToken(keyHash: keyHash)
        for _ in 0..<tokens.count {
            let index = Int(tokenNodes[t])
            if live[index] { return index }
            t = t + 1 == tokens.count ? 0 : t + 1
        }
        return nil
    }

    /// The first `replicas` distinct nodes for `key` for which `isLive` holds, in preference order.
    public func owners(of key: [UInt8], replicas: Int, isLive: (NodeID) -> Bool = { _ in true }) -> [NodeID] {
        owners(keyHash: HashRing.placementHash(key), replicas: replicas, isLive: isLive)
    }

    /// The hash that places `key` on the ring: of its hash tag if it has one, as in Redis Cluster
    /// (the bytes between the first `{` and the first `}` after it, when there are any), so that
    /// `{user:42}:name` and `{user:42}:mail` have the same owners and a multi-key command on them
    /// runs on one node; else of the whole key.
    public static func placementHash(_ key: [UInt8]) -> UInt64 {
        key.withUnsafeBytes { raw in
            if let open = raw.firstIndex(of: UInt8(ascii: "{")),
                let close = raw[(open + 1)...].firstIndex(of: UInt8(ascii: "}")), close > open + 1
            {
                return StableHash.hash(UnsafeRawBufferPointer(rebasing: raw[(open + 1)..<close]))
            }
            return StableHash.hash(raw)
        }
    }

    /// The owners of a key whose `StableHash` is `keyHash`.
    public func owners(keyHash: UInt64, replicas: Int, isLive: (NodeID) -> Bool = { _ in true }) -> [NodeID] {
        guard !tokens.isEmpty, replicas > 0 else { return [] }
        var result: [NodeID] = []
        result.reserveCapacity(replicas)
        // Nodes already passed: a short list (replicas plus any dead ones), so a linear search
        // beats hashing, and it stays on the stack for small counts.
        var seen: [Int32] = []
        seen.reserveCapacity(replicas + 2)
        var t = primaryToken(keyHash: keyHash)
        for _ in 0..<tokens.count {
            let index = tokenNodes[t]
            if !seen.contains(index) {
                seen.append(index)
                let node = nodes[Int(index)]
                if isLive(node) {
                    result.append(node)
                    if result.count == replicas { break }
                }
                if seen.count == nodes.count { break }
            }
            t = t + 1 == tokens.count ? 0 : t + 1
        }
        return result
    }
}
