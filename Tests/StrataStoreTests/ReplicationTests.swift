import Foundation
import Testing

@testable import StrataStore

/// Last-writer-wins between replicas: two stores exchange records in any order and end equal.
@Suite struct ReplicationTests {
    func pair(_ body: (TieredStore, TieredStore) throws -> Void) throws {
        try withTemporaryDirectory { a in
            try withTemporaryDirectory { b in
                let first = try TieredStore(
                    path: a, configuration: StoreConfiguration(diskBudget: 64 << 20, snapshotInterval: 0, nodeID: 1),
                    logger: quietLogger())
                let second = try TieredStore(
                    path: b, configuration: StoreConfiguration(diskBudget: 64 << 20, snapshotInterval: 0, nodeID: 2),
                    logger: quietLogger())
                defer {
                    first.close()
                    second.close()
                }
                try body(first, second)
            }
        }
    }

    @Test func newerRecordWinsOlderIsIgnored() throws {
        try pair { a, b in
            try a.set(bytes("k"), bytes("old"))
            let old = try #require(a.exportRecord(bytes("k")))
            usleep(2000)
            try b.set(bytes("k"), bytes("new"))
            let new = try #require(b.exportRecord(bytes("k")))
            #expect(TieredStore.version(ofRecord: new)! > TieredStore.version(ofRecord: old)!)
            #expect(try a.applyRecord(bytes("k"), record: new))
            #expect(a.get(bytes("k")) == bytes("new"))
            #expect(try !b.applyRecord(bytes("k"), record: old))
            #expect(b.get(bytes("k")) == bytes("new"))
            // Applying the same record twice changes nothing.
            #expect(try !a.applyRecord(bytes("k"), record: new))
        }
    }

    @Test func tombstonesBeatOlderWritesAndLoseToNewerOnes() throws {
        try pair { a, b in
            try a.set(bytes("k"), bytes("v1"))
            let v1 = try #require(a.exportRecord(bytes("k")))
            #expect(try b.applyRecord(bytes("k"), record: v1))
            usleep(2000)
            #expect(try a.delete(bytes("k")))
            let tombstone = try #require(a.exportRecord(bytes("k")))
            #expect(TieredStore.isTombstone(tombstone))
            #expect(try b.applyRecord(bytes("k"), record: tombstone))
            #expect(b.get(bytes("k")) == nil)
            // A late copy of the older write cannot bring the key back, on disk either.
            #expect(try !b.applyRecord(bytes("k"), record: v1))
            try b.sync()
            #expect(b.get(bytes("k")) == nil)
            #expect(TieredStore.isTombstone(try #require(b.exportRecord(bytes("k")))))
            // A newer write does.
            usleep(2000)
            try a.set(bytes("k"), bytes("v2"))
            #expect(try b.applyRecord(bytes("k"), record: try #require(a.exportRecord(bytes("k")))))
            #expect(b.get(bytes("k")) == bytes("v2"))
        }
    }

    @Test func concurrentWritesConvergeWhateverTheOrder() throws {
        try pair { a, b in
            // Both replicas take writes to the same keys, then swap every record.
            for i in 0..<200 {
                try a.set(bytes("key\(i)"), bytes("from-a-\(i)"))
                try b.set(bytes("key\(i)"), bytes("from-b-\(i)"))
                if i % 3 == 0 { try b.delete(bytes("key\(i)")) }
            }
            let fromA = (0..<200).map { a.exportRecord(bytes("key\($0)"))! }
            let fromB = (0..<200).map { b.exportRecord(bytes("key\($0)"))! }
            for i in (0..<200).reversed() { _ = try a.applyRecord(bytes("key\(i)"), record: fromB[i]) }
            for i in 0..<200 { _ = try b.applyRecord(bytes("key\(i)"), record: fromA[i]) }
            for i in 0..<200 {
                #expect(a.get(bytes("key\(i)")) == b.get(bytes("key\(i)")), "key\(i)")
                #expect(a.exportRecord(bytes("key\(i)")) == b.exportRecord(bytes("key\(i)")))
            }
        }
    }

    @Test func aRecordFromTheFutureMovesTheClock() throws {
        try pair { a, b in
            try a.set(bytes("k"), bytes("v"))
            var record = try #require(a.exportRecord(bytes("k")))
            // Pretend the other node's clock is an hour ahead.
            let ahead = Version(clock: UInt64(currentTimeMilliseconds() + 3_600_000) << 16, node: 1)
            Record.setExpiry(0, version: ahead, stamp: 0, in: &record)
            #expect(try b.applyRecord(bytes("k"), record: record))
            // b's next local write must still win over what it applied.
            try b.set(bytes("k"), bytes("local"))
            #expect(TieredStore.version(ofRecord: try #require(b.exportRecord(bytes("k"))))! > ahead)
        }
    }

    @Test func damagedOrMisaddressedRecordsAreRefused() throws {
        try pair { a, b in
            try a.set(bytes("k"), bytes("value"))
            var record = try #require(a.exportRecord(bytes("k")))
            record[record.count - 1] ^= 1
            #expect(throws: StoreError.self) { try b.applyRecord(bytes("k"), record: record) }
            let long = [UInt8](repeating: 0x61, count: 600)
            try a.set(long, bytes("v"))
            let longRecord = try #require(a.exportRecord(long))
            #expect(throws: StoreError.self) { try b.applyRecord(long + [1], record: longRecord) }
            #expect(b.get(bytes("k")) == nil)
        }
    }
}
