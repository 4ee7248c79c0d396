import Foundation
import Testing

@testable import StrataStore

/// A flush is a version: every record at or below it is gone, and stays gone when a replica that
/// missed the flush sends it back, across restarts too.
@Suite struct FlushFloorTests {
    func open(_ path: String, node: UInt32) throws -> TieredStore {
        try TieredStore(
            path: path, configuration: StoreConfiguration(diskBudget: 64 << 20, snapshotInterval: 0, nodeID: node),
            logger: quietLogger())
    }

    /// Two stores of two nodes, each in a directory of its own.
    func pair(_ body: (TieredStore, TieredStore) throws -> Void) throws {
        try withTemporaryDirectory { a in
            try withTemporaryDirectory { b in
                let first = try open(a, node: 1)
                let second = try open(b, node: 2)
                defer {
                    first.close()
                    second.close()
                }
                try body(first, second)
            }
        }
    }

    @Test func recordsFromBeforeAFlushAreRefusedAndNewerOnesKept() throws {
        try pair { first, second in
            try first.set(bytes("old"), bytes("v"))
            let old = try #require(first.exportRecord(bytes("old")))
            let floor = try #require(second.flush())
            #expect(second.flushFloor == floor)
            // A late copy of a write from before the flush does not come back.
            #expect(try !second.applyRecord(bytes("old"), record: old))
            #expect(second.get(bytes("old")) == nil)
            // A write after the flush (its clock moved past the floor) is applied.
            #expect(first.flush(upTo: floor) == floor)
            #expect(first.get(bytes("old")) == nil)
            try first.set(bytes("new"), bytes("v2"))
            let new = try #require(first.exportRecord(bytes("new")))
            #expect(TieredStore.version(ofRecord: new)! > floor)
            #expect(try second.applyRecord(bytes("new"), record: new))
            #expect(second.get(bytes("new")) == bytes("v2"))
            // The same flush twice, or an older one, does nothing.
            #expect(second.flush(upTo: floor) == nil)
            #expect(second.get(bytes("new")) == bytes("v2"))
            #expect(try second.count() == 1)
        }
    }

    @Test func aLateFlushKeepsRecordsNewerThanItself() throws {
        try pair { first, second in
            try second.set(bytes("before"), bytes("1"))
            try second.sync()
            let floor = try #require(first.flush())  // on another node, not yet seen here
            usleep(2000)
            try first.set(bytes("after"), bytes("2"))
            #expect(try second.applyRecord(bytes("after"), record: try #require(first.exportRecord(bytes("after")))))
            try second.set(bytes("pending"), bytes("3"))  // newer than the floor, still queued
            #expect(second.flush(upTo: floor) == floor)
            #expect(second.get(bytes("before")) == nil)
            try second.sync()
            #expect(second.get(bytes("before")) == nil)
            #expect(second.get(bytes("after")) == bytes("2"))
            #expect(second.get(bytes("pending")) == bytes("3"))
            #expect(try second.count() == 2)
        }
    }

    @Test func theFloorSurvivesARestart() throws {
        try withTemporaryDirectory { a in
            try withTemporaryDirectory { b in
                let other = try open(b, node: 2)
                defer { other.close() }
                try other.set(bytes("k"), bytes("v"))
                let old = try #require(other.exportRecord(bytes("k")))
                var store = try open(a, node: 1)
                let floor = try #require(store.flush())
                store.close()
                store = try open(a, node: 1)
                defer { store.close() }
                #expect(store.flushFloor == floor)
                #expect(try !store.applyRecord(bytes("k"), record: old))
                #expect(store.get(bytes("k")) == nil)
                // New writes order after the floor even if the wall clock had stepped back.
                try store.set(bytes("n"), bytes("v"))
                #expect(TieredStore.version(ofRecord: try #require(store.exportRecord(bytes("n"))))! > floor)
            }
        }
    }

    @Test func aFlushOlderThanARestartKeepsWhatCameAfterIt() throws {
        try withTemporaryDirectory { a in
            try withTemporaryDirectory { b in
                let other = try open(b, node: 2)
                defer { other.close() }
                let floor = try #require(other.flush())
                usleep(2000)
                var store = try open(a, node: 1)
                try store.set(bytes("after"), bytes("v"))
                store.close()
                store = try open(a, node: 1)
                defer { store.close() }
                // Learnt late, after a restart: the write that came after the flush stays.
                #expect(store.flush(upTo: floor) == floor)
                try store.sync()
                #expect(store.get(bytes("after")) == bytes("v"))
            }
        }
    }
}
