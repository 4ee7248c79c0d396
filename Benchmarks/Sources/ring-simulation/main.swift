// The hash ring at scale: balance, movement and lookup time for large clusters.
// Run: `cd Benchmarks && swift run -c release ring-simulation [nodes] [keys]`.
import Foundation
import StrataCluster
import StrataStore

let arguments = CommandLine.arguments
let nodeCount = arguments.count > 1 ? Int(arguments[1]) ?? 1000 : 1000
let keyCount = arguments.count > 2 ? Int(arguments[2]) ?? 2_000_000 : 2_000_000

let members = (0..<nodeCount).map { NodeID("node-\($0)") }
var start = Date()
let ring = HashRing(nodes: members)
let buildSeconds = Date().timeIntervalSince(start)
let grown = HashRing(nodes: members + [NodeID("node-new")])
let shrunk = HashRing(nodes: Array(members.dropFirst()))

let hashes = (0..<keyCount).map { StableHash.hash(Array("key:\($0)".utf8)) }
var load = [NodeID: Int]()
var replicaLoad = [NodeID: Int]()
start = Date()
for hash in hashes {
    let owners = ring.owners(keyHash: hash, replicas: 2)
    load[owners[0], default: 0] += 1
    for owner in owners { replicaLoad[owner, default: 0] += 1 }
}
let lookupSeconds = Date().timeIntervalSince(start)
var movedOnJoin = 0
var movedOnLeave = 0
for hash in hashes {
    let before = ring.owners(keyHash: hash, replicas: 1)[0]
    if grown.owners(keyHash: hash, replicas: 1)[0] != before { movedOnJoin += 1 }
    if shrunk.owners(keyHash: hash, replicas: 1)[0] != before { movedOnLeave += 1 }
}
let mean = Double(keyCount) / Double(nodeCount)
let sortedLoads = load.values.sorted()
print("ring: \(nodeCount) nodes x \(ring.virtualNodes) virtual nodes, \(ring.probes) probes; \(keyCount) keys")
print(String(format: "build: %.3f s; owners(replicas: 2) lookup: %.0f ns/key", buildSeconds, lookupSeconds / Double(keyCount) * 1e9))
print(String(format: "primary load: max %.3fx mean, min %.3fx mean (%.0f keys/node expected; sampling noise ~%.3f)",
             Double(sortedLoads.last!) / mean, Double(sortedLoads.first!) / mean, mean, 1 / mean.squareRoot()))
let replicaMean = 2 * mean
print(String(format: "replica load (2 owners): max %.3fx mean", Double(replicaLoad.values.max()!) / replicaMean))
print(String(format: "adding node %d moved %.5f of keys (ideal %.5f, ratio %.2f)",
             nodeCount + 1, Double(movedOnJoin) / Double(keyCount), 1 / Double(nodeCount + 1),
             Double(movedOnJoin) / Double(keyCount) * Double(nodeCount + 1)))
print(String(format: "removing a node moved %.5f of keys (ideal %.5f, ratio %.2f)",
             Double(movedOnLeave) / Double(keyCount), 1 / Double(nodeCount),
             Double(movedOnLeave) / Double(keyCount) * Double(nodeCount)))
