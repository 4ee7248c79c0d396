import Foundation
import Testing

@testable import StrataStore

@Suite struct WarmStartTests {
    @Test func restartBringsHotKeysBackIntoMemory() throws {
        try withTemporaryDirectory { path in
            let memory = 512 << 10
            let store = try openStore(path, memory: memory, shards: 2)
            let value = [UInt8](repeating: 3, count: 200)
            for i in 0..<10_000 { try store.set(bytes("cold\(i)"), value) }
            // The hot set: read after the cold writes, so it is the most recently used.
            for _ in 0..<3 {
                for i in 0..<500 { try store.set(bytes("hot\(i)"), value) }
            }
            #expect(store.tier(of: bytes("hot1")).tier == .memory)
            store.close()

            let reopened = try openStore(path, memory: memory, shards: 2)
            defer { reopened.close() }
            // Serving starts at once: a read during warm-up is answered (from disk if need be).
            #expect(reopened.get(bytes("cold5")) == value)
            reopened.waitForWarmUp()
            let progress = reopened.warmUp
            #expect(progress.done)
            #expect(progress.loadedKeys >= 500)
            #expect(progress.totalKeys >= 500)
            for i in 0..<500 {
                #expect(reopened.tier(of: bytes("hot\(i)")).tier == .memory, "hot\(i) not warm")
            }
            #expect(reopened.tier(of: bytes("cold0")).tier == .disk)
            #expect(reopened.statistics.memoryBytes <= memory)
        }
    }

    @Test func warmUpNeverOverwritesNewerWrites() throws {
        try withTemporaryDirectory { path in
            let store = try openStore(path)
            for i in 0..<20_000 { try store.set(bytes("k\(i)"), bytes("old")) }
            store.close()
            let reopened = try openStore(path)
            defer { reopened.close() }
            // Write while the warm start is (probably) still loading.
            for i in stride(from: 0, to: 20_000, by: 7) { try reopened.set(bytes("k\(i)"), bytes("new")) }
            reopened.waitForWarmUp()
            for i in stride(from: 0, to: 20_000, by: 7) {
                #expect(reopened.get(bytes("k\(i)")) == bytes("new"))
            }
            #expect(reopened.get(bytes("k1")) == bytes("old"))
        }
    }
}
