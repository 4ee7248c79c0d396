import Testing

@testable import StrataCluster
@testable import StrataStore

@Suite struct HashRingTests {
    let five = HashRing(nodes: ["node-a", "node-b", "node-c", "node-d", "node-e"].map(NodeID.init))

    func names(_ nodes: [NodeID]) -> [String] { nodes.map(\.name) }

    /// Vectors from an independent implementation (Python: xxhash.xxh64 and splitmix64), so a
    /// change to the placement, the probes or the walk shows up here, not as keys silently
    /// moving between nodes after an upgrade.
    @Test func vectors() {
        #expect(HashRing.token(Array("node-a".utf8), 0) == 0x0537_8e2c_8885_d70b)
        #expect(HashRing.token(Array("node-a".utf8), 7) == 0x1f68_21ae_df31_021b)
        let h = StableHash.hash(Array("user:1".utf8))
        #expect(HashRing.probe(h, 0) == 0x08d4_321d_0724_20ba)
        #expect(HashRing.probe(h, 5) == 0xc9c6_96a6_1ca5_1579)
        let cases: [(String, [String], [String])] = [
            ("user:1", ["node-e", "node-a", "node-c"], ["node-e", "node-a"]),
            ("user:2", ["node-b", "node-d", "node-c"], ["node-b", "node-d"]),
            ("user:3", ["node-c", "node-d", "node-e"], ["node-d", "node-e"]),
            ("session:42", ["node-e", "node-b", "node-a"], ["node-e", "node-b"]),
            ("", ["node-e", "node-a", "node-d"], ["node-e", "node-a"]),
            ("https://example.com/?q=strata", ["node-a", "node-c", "node-b"], ["node-a", "node-b"]),
        ]
        for (key, owners, withoutC) in cases {
            #expect(names(five.owners(of: Array(key.utf8), replicas: 3)) == owners, "\(key)")
            #expect(names(five.owners(of: Array(key.utf8), replicas: 2, isLive: { $0.name != "node-c" })) == withoutC, "\(key)")
        }
    }

    /// Cluster-wide counts ask each node for the keys it coordinates with `coordinator`, while
    /// requests are routed by `owners`: both must name the same node for every key and live set.
    @Test func coordinatorIsTheFirstLiveOwner() {
        let liveSets: [[Bool]] = [
            [true, true, true, true, true], [false, true, true, true, true], [true, false, false, true, true],
            [false, false, false, false, true], [false, false, false, false, false],
        ]
        for live in liveSets {
            let isLive: (NodeID) -> Bool = { live[five.nodes.firstIndex(of: $0)!] }
            for i in 0..<500 {
                let hash = StableHash.hash(Array("key:\(i)".utf8))
                let expected = five.owners(keyHash: hash, replicas: 1, isLive: isLive).first
                #expect(five.coordinator(keyHash: hash, live: live).map { five.nodes[$0] } == expected)
                let routed = five.owners(keyHash: hash, replicas: 2).filter(isLive).first
                if let routed { #expect(routed == expected) }
            }
        }
    }

    /// Redis Cluster's hash tags: the bytes between the first `{` and the first `}` after it, when
    /// there are any, place the key.
    @Test func hashTagsPlaceKeysTogether() {
        func hash(_ key: String) -> UInt64 { HashRing.placementHash(Array(key.utf8)) }
        let tag = StableHash.hash(Array("user:42".utf8))
        #expect(hash("{user:42}:name") == tag)
        #expect(hash("{user:42}:mail") == tag)
        #expect(hash("x{user:42}y{other}") == tag)
        #expect(hash("a}{user:42}") == tag)
        #expect(hash("{}user") == StableHash.hash(Array("{}user".utf8)))  // empty tag: the whole key
        #expect(hash("{user") == StableHash.hash(Array("{user".utf8)))  // no closing brace
        #expect(hash("user:42") == tag)
        for i in 0..<200 {
            #expect(five.owners(of: Array("{t}k\(i)".utf8), replicas: 2) == five.owners(of: Array("t".utf8), replicas: 2))
        }
    }

    @Test func ownersAreDistinctLiveAndBounded() {
        for i in 0..<1000 {
            let key = Array("k\(i)".utf8)
            let all = five.owners(of: key, replicas: 10)
            #expect(all.count == 5 && Set(all).count == 5)
            let two = five.owners(of: key, replicas: 2)
            #expect(two == Array(all.prefix(2)))
            let live = five.owners(of: key, replicas: 2, isLive: { $0 != two[0] })
            #expect(live == [all[1], all[2]])  // the next owner takes over
        }
        #expect(HashRing(nodes: []).owners(of: [1], replicas: 2).isEmpty)
        #expect(five.owners(of: [1], replicas: 3, isLive: { _ in false }).isEmpty)
    }

    /// The bar: with 128 virtual nodes and 10 nodes the most loaded node holds at most
    /// 1.10x the mean, and adding an 11th node moves close to 1/11 of the keys (at most 1.2x).
    @Test func balanceAndMovement() {
        let ten = (0..<10).map { NodeID("node-\($0)") }
        let ring10 = HashRing(nodes: ten)
        let ring11 = HashRing(nodes: ten + [NodeID("node-10")])
        let keys = 200_000
        var load: [NodeID: Int] = [:]
        var moved = 0
        var movedElsewhere = 0
        for i in 0..<keys {
            let hash = StableHash.hash(Array("key:\(i)".utf8))
            let before = ring10.owners(keyHash: hash, replicas: 1)[0]
            let after = ring11.owners(keyHash: hash, replicas: 1)[0]
            load[before, default: 0] += 1
            if before != after {
                moved += 1
                if after.name != "node-10" { movedElsewhere += 1 }
            }
        }
        let mean = Double(keys) / 10
        let most = Double(load.values.max()!)
        #expect(most / mean <= 1.10, "most loaded node holds \(most / mean)x the mean")
        let share = Double(moved) / Double(keys)
        #expect(share <= 1.2 / 11 && share >= 0.8 / 11, "moved \(share) of keys; 1/11 is \(1.0 / 11)")
        #expect(movedElsewhere == 0, "keys only move to the node that joined")
    }
}

@Suite struct KeyspaceViewTests {
    @Test func encodesAndDecodes() {
        let view = KeyspaceView(epoch: 7, live: [NodeID("n3"), NodeID("n1")])
        #expect(view.encoded == "7:n1,n3")
        #expect(KeyspaceView(encoded: view.encoded) == view)
        #expect(KeyspaceView(encoded: "3:") == KeyspaceView(epoch: 3, live: []))
        #expect(KeyspaceView(encoded: "x:n1") == nil)
        #expect(KeyspaceView(encoded: "n1") == nil)
    }

    @Test func versionsAsText() {
        let version = Version(clock: 123_456 << 16 | 7, node: 42)
        #expect(Version(text: version.text) == version)
        #expect(Version(text: "0") == .zero)
        #expect(Version.zero.text == "0")
        #expect(Version(text: "12") == nil)
        #expect(Version(text: "a-b") == nil)
        #expect(Version(bytes: version.bytes) == version)
    }
}
