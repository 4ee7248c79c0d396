import Foundation
import Testing

@testable import StrataStore

/// A value's kind (string or a collection type) travels with it through every tier, copy and
/// restart, and string reads refuse other kinds.
@Suite struct ValueKindTests {
    private func setHash(_ store: TieredStore, _ key: String, _ value: [UInt8], expiresAt: Int64 = 0) throws {
        try store.update(bytes(key), accepting: nil) { _ in (.set(value: value, expiresAt: expiresAt, kind: .hash), ()) }
    }

    @Test func theKindSurvivesMemoryDiskAndRestart() throws {
        try withTemporaryDirectory { path in
            let big = [UInt8](repeating: 7, count: 3000)  // compressed on disk (past the threshold)
            do {
                let store = try openStore(path, memory: 256 << 10, shards: 1)
                try setHash(store, "h", big)
                try store.set(bytes("s"), bytes("text"))
                #expect(store.entry(bytes("h")) == Entry(value: big, expiresAt: 0, kind: .hash))
                #expect(store.kind(of: bytes("h")) == .hash)
                #expect(store.kind(of: bytes("s")) == .string)
                #expect(store.kind(of: bytes("none")) == nil)
                // Push `h` out of memory: the kind comes back from its record.
                for i in 0..<2000 { try store.set(bytes("filler\(i)"), [UInt8](repeating: 1, count: 200)) }
                try store.sync()
                #expect(store.tier(of: bytes("h")).tier == .disk)
                #expect(store.tier(of: bytes("h")).kind == .hash)
                #expect(store.kind(of: bytes("h")) == .hash)
                #expect(store.entry(bytes("h"))?.kind == .hash)  // promotes
                #expect(store.tier(of: bytes("h")).tier == .memory)
                #expect(store.tier(of: bytes("h")).kind == .hash)
                store.close()
            }
            let reopened = try openStore(path, memory: 256 << 10, shards: 1)
            defer { reopened.close() }
            reopened.waitForWarmUp()
            #expect(reopened.entry(bytes("h")) == Entry(value: big, expiresAt: 0, kind: .hash))
            #expect(reopened.kind(of: bytes("s")) == .string)
        }
    }

    @Test func stringReadsRefuseCollections() throws {
        try withTemporaryDirectory { path in
            let store = try openStore(path)
            defer { store.close() }
            try setHash(store, "h", bytes("payload"))
            let read = bytes("h").withUnsafeBytes { k in store.getFromMemory(k) { $0.count } }
            guard case .wrongType = read else {
                Issue.record("getFromMemory gave \(read)")
                return
            }
            #expect(throws: StoreError.wrongType) { try bytes("h").withUnsafeBytes { k in try store.getAfterMemoryMiss(k) { $0.count } } }
            #expect(store.get(bytes("h")) == nil)
            // A string command's update refuses it; one that accepts any kind sees it.
            #expect(throws: StoreError.wrongType) { try store.update(bytes("h")) { _ in (.none, ()) } }
            let kind = try store.update(bytes("h"), accepting: nil) { entry in (.none, entry?.kind) }
            #expect(kind == .hash)
            // Plain writes replace any kind, and expiry changes keep it.
            #expect(try store.expire(bytes("h"), at: currentTimeMilliseconds() + 60_000))
            #expect(store.kind(of: bytes("h")) == .hash)
            try store.set(bytes("h"), bytes("now a string"))
            #expect(store.kind(of: bytes("h")) == .string)
        }
    }

    @Test func renameAndCopyKeepTheKind() throws {
        try withTemporaryDirectory { path in
            let store = try openStore(path)
            defer { store.close() }
            try setHash(store, "a", bytes("payload"))
            #expect(try store.copy(bytes("a"), to: bytes("b")))
            #expect(try store.rename(bytes("a"), to: bytes("c")) == true)
            #expect(store.kind(of: bytes("b")) == .hash)
            #expect(store.kind(of: bytes("c")) == .hash)
            #expect(store.kind(of: bytes("a")) == nil)
        }
    }

    @Test func replicatedRecordsCarryTheKind() throws {
        try withTemporaryDirectory { source in
            try withTemporaryDirectory { target in
                let a = try openStore(source)
                defer { a.close() }
                let b = try openStore(target)
                defer { b.close() }
                try setHash(a, "h", bytes("payload"))
                let record = try #require(a.exportQueuedRecord(bytes("h")) ?? a.exportRecord(bytes("h")))
                #expect(try b.applyRecord(bytes("h"), record: record))
                #expect(b.entry(bytes("h")) == Entry(value: bytes("payload"), expiresAt: 0, kind: .hash))
            }
        }
    }

    @Test func anUnknownKindByteIsADamagedRecord() throws {
        var record = Record.encode(
            value: UnsafeRawBufferPointer(start: nil, count: 0), fullKey: nil, expiry: 0, version: Version(clock: 1, node: 0),
            kind: .zset, stamp: 0, compressThreshold: .max, compressor: ValueCompressor()
        ).bytes
        #expect(try record.withUnsafeBytes { try Record.header($0) }.kind == .zset)
        record[2] = 9
        #expect(throws: Record.DecodeError.unknownKind(9)) { try record.withUnsafeBytes { try Record.header($0) } }
    }
}
