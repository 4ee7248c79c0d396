import Dispatch
import Foundation
import Testing

@testable import StrataStore

@Suite struct ConcurrencyTests {
    /// Many threads read, write, delete, expire and scan overlapping keys with a memory budget
    /// small enough to force constant eviction and promotion. Each thread owns some keys and
    /// checks that it always reads back its own last write; shared keys only need to be one of
    /// the values written.
    @Test func mixedLoadFromManyThreadsStaysConsistent() throws {
        try withTemporaryDirectory { path in
            let store = try openStore(path, memory: 128 << 10, disk: 64 << 20, threshold: 512, shards: 4)
            defer { store.close() }
            let threads = 6
            let failures = FailureCount()
            DispatchQueue.concurrentPerform(iterations: threads) { t in
                var rng = SystemRandomNumberGenerator()
                var mine: [Int: [UInt8]] = [:]
                for step in 0..<4000 {
                    let own = Int.random(in: 0..<300, using: &rng)
                    let ownKey = bytes("t\(t):\(own)")
                    let shared = bytes("shared:\(Int.random(in: 0..<50, using: &rng))")
                    switch step % 8 {
                    case 0, 1, 2:
                        let value = bytes("v\(step)-") + [UInt8](repeating: UInt8(t), count: Int.random(in: 0..<1500, using: &rng))
                        do { try store.set(ownKey, value) } catch { failures.add() }
                        mine[own] = value
                    case 3, 4, 5:
                        if store.get(ownKey) != mine[own] { failures.add() }
                    case 6:
                        if (try? store.delete(ownKey)) != (mine[own] != nil) { failures.add() }
                        mine[own] = nil
                    default:
                        try? store.set(shared, bytes("shared-by-\(t)"))
                        if let v = store.get(shared), !String(decoding: v, as: UTF8.self).hasPrefix("shared-by-") {
                            failures.add()
                        }
                        if step % 200 == 7 { _ = try? store.scan(cursor: nil, count: 50) }
                    }
                }
                for (own, value) in mine where store.get(bytes("t\(t):\(own)")) != value { failures.add() }
            }
            #expect(failures.value == 0)
            let stats = store.statistics
            #expect(stats.memoryBytes <= 128 << 10)
            #expect(stats.memoryEvictions > 0)
            #expect(stats.promotions > 0)
        }
    }
}

final class FailureCount: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add() { lock.lock(); count += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}
