import Foundation
import Testing

@testable import StrataStore

/// The write-ahead log stays about two batches long under writes that never pause, and replaying
/// a log set aside for a batch that did reach LMDB changes nothing.
@Suite struct WriteAheadLogRotationTests {
    func logBytes(_ path: String) -> Int {
        ["/wal", "/wal.applying"].reduce(0) { total, name in
            total + ((try? FileManager.default.attributesOfItem(atPath: path + name)[.size] as? Int) ?? 0)
        }
    }

    /// Writes that never pause: the log used to be emptied only when nothing had been queued
    /// since the batch was taken, which under such writes never happened.
    @Test func theLogStaysShortUnderWritesThatNeverPause() throws {
        try withTemporaryDirectory { path in
            let store = try openStore(path, memory: 64 << 20, disk: 512 << 20)
            defer { store.close() }
            let value = [UInt8](repeating: 7, count: 20)
            var writes = 0
            let end = Date().addingTimeInterval(5)  // about five applies
            while Date() < end {
                // A small key space: each batch collapses to a few thousand puts LMDB takes at once.
                try store.set(bytes("k\(writes % 2000)"), value)
                writes += 1
            }
            let logged = logBytes(path)
            let frame = 8 + 1 + 4 + 6 + 4 + Record.headerSize + value.count
            #expect(logged < writes * frame / 2, "the log holds \(logged) bytes after \(writes) writes of \(frame) bytes")
        }
    }

    @Test func aSetAsideLogOlderThanLMDBIsNotReplayedOverIt() throws {
        try withTemporaryDirectory { path in
            var store = try openStore(path)
            try store.set(bytes("k"), bytes("v1"))
            let old = try #require(store.exportRecord(bytes("k")))
            usleep(2000)
            try store.set(bytes("k"), bytes("v2"))
            try store.set(bytes("gone"), bytes("x"))
            let gone = try #require(store.exportRecord(bytes("gone")))
            #expect(try store.delete(bytes("gone")))
            store.close()
            // A crash after the batch's commit, before its set-aside log was removed.
            var frames: [UInt8] = []
            WriteAheadLog.frame(.put, key: bytes("k"), record: old, into: &frames)
            WriteAheadLog.frame(.put, key: bytes("gone"), record: gone, into: &frames)
            try Data(frames).write(to: URL(fileURLWithPath: path + "/wal.applying"))
            store = try openStore(path)
            defer { store.close() }
            #expect(store.get(bytes("k")) == bytes("v2"))
            #expect(store.get(bytes("gone")) == nil)
            #expect(!FileManager.default.fileExists(atPath: path + "/wal.applying"))
        }
    }
}
