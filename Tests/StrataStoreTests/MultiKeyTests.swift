import Foundation
import Dispatch
import Testing

@testable import StrataStore

/// `updateAll` and what is built on it (rename, copy), the live memory budget and the per-key
/// size estimate.
@Suite struct MultiKeyTests {
    @Test func renameMovesTheValueAndItsExpiry() throws {
        try withTemporaryDirectory { path in
            let store = try openStore(path)
            defer { store.close() }
            let expiry = currentTimeMilliseconds() + 100_000
            try store.set(bytes("a"), bytes("value"), expiresAt: expiry)
            #expect(try store.rename(bytes("a"), to: bytes("b")) == true)
            #expect(store.get(bytes("a")) == nil)
            #expect(store.entry(bytes("b")) == Entry(value: bytes("value"), expiresAt: expiry))
            #expect(try store.rename(bytes("missing"), to: bytes("c")) == nil)
            // Onto itself: nothing changes; RENAMENX answers 0.
            #expect(try store.rename(bytes("b"), to: bytes("b")) == true)
            #expect(try store.rename(bytes("b"), to: bytes("b"), onlyIfAbsent: true) == false)
            #expect(try store.rename(bytes("missing"), to: bytes("missing")) == nil)
            #expect(store.get(bytes("b")) == bytes("value"))
        }
    }

    @Test func renameOnlyIfAbsentKeepsAnExistingDestination() throws {
        try withTemporaryDirectory { path in
            let store = try openStore(path)
            defer { store.close() }
            try store.set(bytes("a"), bytes("1"))
            try store.set(bytes("b"), bytes("2"), expiresAt: currentTimeMilliseconds() + 50_000)
            #expect(try store.rename(bytes("a"), to: bytes("b"), onlyIfAbsent: true) == false)
            #expect(store.get(bytes("a")) == bytes("1"))
            #expect(store.get(bytes("b")) == bytes("2"))
            // A plain rename replaces the destination, expiry included (the source had none).
            #expect(try store.rename(bytes("a"), to: bytes("b")) == true)
            #expect(store.entry(bytes("b")) == Entry(value: bytes("1"), expiresAt: 0))
        }
    }

    @Test func copyKeepsTheSourceAndReplacesOnlyWhenAsked() throws {
        try withTemporaryDirectory { path in
            let store = try openStore(path)
            defer { store.close() }
            let expiry = currentTimeMilliseconds() + 100_000
            try store.set(bytes("s"), bytes("v"), expiresAt: expiry)
            #expect(try store.copy(bytes("s"), to: bytes("d")))
            #expect(store.entry(bytes("d")) == Entry(value: bytes("v"), expiresAt: expiry))
            #expect(store.get(bytes("s")) == bytes("v"))
            try store.set(bytes("s"), bytes("w"))
            #expect(try !store.copy(bytes("s"), to: bytes("d")))
            #expect(store.get(bytes("d")) == bytes("v"))
            #expect(try store.copy(bytes("s"), to: bytes("d"), replace: true))
            #expect(store.entry(bytes("d")) == Entry(value: bytes("w"), expiresAt: 0))
            #expect(try !store.copy(bytes("missing"), to: bytes("d"), replace: true))
        }
    }

    /// A key only on disk (a memory tier too small to hold it) renames, and the rename survives
    /// a restart.
    @Test func renameOfADiskOnlyKeySurvivesARestart() throws {
        try withTemporaryDirectory { path in
            let value = [UInt8](repeating: 7, count: 4096)
            do {
                let store = try openStore(path, memory: 0)
                try store.set(bytes("cold"), value)
                try store.sync()
                #expect(store.tier(of: bytes("cold")).tier == .disk)
                #expect(try store.rename(bytes("cold"), to: bytes("moved")) == true)
                store.close()
            }
            let store = try openStore(path)
            defer { store.close() }
            #expect(store.get(bytes("cold")) == nil)
            #expect(store.get(bytes("moved")) == value)
        }
    }

    /// Renames back and forth race with readers that look at both keys under their locks: each
    /// reader always finds the value under exactly one name.
    @Test func readersUnderTheLocksNeverSeeBothOrNeitherName() throws {
        try withTemporaryDirectory { path in
            let store = try openStore(path)
            defer { store.close() }
            try store.set(bytes("a"), bytes("v"))
            let anomalies = FailureCount()
            DispatchQueue.concurrentPerform(iterations: 4) { worker in
                for i in 0..<2_000 {
                    if worker == 0 {
                        let (from, to) = i % 2 == 0 ? ("a", "b") : ("b", "a")
                        if (try? store.rename(bytes(from), to: bytes(to))) != true { anomalies.add() }
                    } else {
                        let present = try? store.updateAll([bytes("a"), bytes("b")]) { entries in
                            ([Mutation.none, .none], entries.filter { $0 != nil }.count)
                        }
                        if present != 1 { anomalies.add() }
                    }
                }
            }
            #expect(anomalies.value == 0)
            #expect(store.get(bytes("a")) == bytes("v"))
            #expect(store.get(bytes("b")) == nil)
        }
    }

    @Test func updateAllAppliesStoresAndExpiriesBeforeDeletions() throws {
        try withTemporaryDirectory { path in
            let store = try openStore(path)
            defer { store.close() }
            try store.set(bytes("x"), bytes("1"))
            try store.set(bytes("y"), bytes("2"))
            let later = currentTimeMilliseconds() + 60_000
            let seen = try store.updateAll([bytes("x"), bytes("y"), bytes("z")]) { entries in
                ([.delete, .expire(at: later), .set(value: bytes("3"), expiresAt: 0)], entries.map { $0?.value })
            }
            #expect(seen == [bytes("1"), bytes("2"), nil])
            #expect(store.get(bytes("x")) == nil)
            #expect(store.entry(bytes("y")) == Entry(value: bytes("2"), expiresAt: later))
            #expect(store.get(bytes("z")) == bytes("3"))
        }
    }

    @Test func shrinkingTheMemoryBudgetEvictsToItAndKeepsEveryKeyOnDisk() throws {
        try withTemporaryDirectory { path in
            let store = try openStore(path, memory: 4 << 20, shards: 4)
            defer { store.close() }
            let value = [UInt8](repeating: 1, count: 1000)
            for i in 0..<2_000 { try store.set(bytes("k\(i)"), value) }
            #expect(store.statistics.memoryItems == 2_000)
            let evicted = store.resizeMemory(budget: 256 << 10)
            let stats = store.statistics
            #expect(evicted > 0 && stats.memoryItems == 2_000 - evicted)
            #expect(stats.memoryBudget == 256 << 10)
            #expect(stats.memoryBytes <= 256 << 10)
            for i in 0..<2_000 { #expect(store.get(bytes("k\(i)")) == value) }
            #expect(store.statistics.memoryBytes <= 256 << 10)
            // Growing it again lets more in.
            store.resizeMemory(budget: 8 << 20)
            for i in 0..<2_000 { _ = store.get(bytes("k\(i)")) }
            #expect(store.statistics.memoryItems == 2_000)
        }
    }

    @Test func memoryUsageCountsTheRecordAndTheMemoryEntry() throws {
        try withTemporaryDirectory { path in
            let store = try openStore(path)
            defer { store.close() }
            #expect(store.memoryUsage(of: bytes("missing")) == nil)
            try store.set(bytes("small"), bytes("v"))
            try store.set(bytes("large"), [UInt8](repeating: 0x41, count: 500))
            let small = try #require(store.memoryUsage(of: bytes("small")))
            let large = try #require(store.memoryUsage(of: bytes("large")))
            #expect(small > 1 + Record.headerSize)
            #expect(large >= 500 * 2 && large > small)
        }
    }
}
