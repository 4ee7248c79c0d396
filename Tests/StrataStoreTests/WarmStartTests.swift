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

    // MARK: The segment snapshot

    /// The check value of CRC-32C (RFC 3720), whichever path computes it, in one piece or several.
    @Test func crc32cMatchesTheStandardCheckValue() {
        let data = Array("123456789".utf8)
        #expect(data.withUnsafeBytes { Checksum.crc32c($0) } == 0xE306_9283)
        let long = [UInt8]((0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        let whole = long.withUnsafeBytes { Checksum.crc32c($0) }
        let split = long.withUnsafeBytes { raw in
            Checksum.crc32c(UnsafeRawBufferPointer(rebasing: raw[13...]), continuing: Checksum.crc32c(UnsafeRawBufferPointer(rebasing: raw[..<13])))
        }
        #expect(whole == split)
    }

    func segments(_ path: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: path + "/snapshot").filter { $0.hasSuffix(".seg") }.sorted()
    }

    /// Takes a snapshot now and waits until it is installed.
    func snapshotNow(_ store: TieredStore) throws {
        let before = store.writer.snapshots.manifest?.generation ?? 0
        store.snapshotHotKeys()
        for _ in 0..<2000 {
            if (store.writer.snapshots.manifest?.generation ?? 0) > before && !store.writer.snapshots.running.load(ordering: .acquiring) {
                return
            }
            usleep(5000)
        }
        Issue.record("no snapshot was installed")
    }

    /// The data directory as a crash would leave it (no final snapshot): copied while the store
    /// is open and idle.
    func crashImage(of path: String, into copy: String) throws {
        let fm = FileManager.default
        for name in try fm.contentsOfDirectory(atPath: path) where name != "LOCK" && name != "lock.mdb" {
            try fm.copyItem(atPath: path + "/" + name, toPath: copy + "/" + name)
        }
    }

    @Test func aSnapshotIsStreamedBackWithEveryValue() throws {
        try withTemporaryDirectory { path in
            let store = try openStore(path, memory: 64 << 20)
            let big = [UInt8]((0..<4000).map { UInt8($0 % 7) })  // compressible: stored compressed
            for i in 0..<5000 { try store.set(bytes("k\(i)"), i % 10 == 0 ? big : bytes("v\(i)"), expiresAt: i % 3 == 0 ? currentTimeMilliseconds() + 600_000 : 0) }
            try store.set(Array(repeating: UInt8(ascii: "x"), count: 600), bytes("long key"))
            store.close()
            #expect(try !segments(path).isEmpty)
            let reopened = try openStore(path, memory: 64 << 20)
            defer { reopened.close() }
            reopened.waitForWarmUp()
            #expect(reopened.warmUp.loadedKeys == 5001)
            for i in 0..<5000 {
                #expect(reopened.tier(of: bytes("k\(i)")).tier == .memory)
                #expect(reopened.get(bytes("k\(i)")) == (i % 10 == 0 ? big : bytes("v\(i)")))
                let expiry = reopened.expiry(of: bytes("k\(i)")) ?? -1
                #expect((expiry > 0) == (i % 3 == 0))
            }
            #expect(reopened.get(Array(repeating: UInt8(ascii: "x"), count: 600)) == bytes("long key"))
        }
    }

    @Test func afterACrashWritesSinceTheSnapshotWinOverIt() throws {
        try withTemporaryDirectory { path in
            try withTemporaryDirectory { copy in
                let store = try openStore(path)
                defer { store.close() }
                for i in 0..<3000 { try store.set(bytes("k\(i)"), bytes("old")) }
                try snapshotNow(store)
                for i in stride(from: 0, to: 3000, by: 3) { try store.set(bytes("k\(i)"), bytes("new")) }
                for i in stride(from: 1, to: 3000, by: 3) { _ = try store.delete(bytes("k\(i)")) }
                try store.sync()
                try crashImage(of: path, into: copy)
                let reopened = try openStore(copy)
                defer { reopened.close() }
                reopened.waitForWarmUp()
                #expect(reopened.warmUp.loadedKeys >= 1000)
                for i in 0..<3000 {
                    let expected: [UInt8]? = i % 3 == 0 ? bytes("new") : i % 3 == 1 ? nil : bytes("old")
                    #expect(reopened.get(bytes("k\(i)")) == expected, "k\(i)")
                }
            }
        }
    }

    @Test func aFlushEndsTheSnapshot() throws {
        try withTemporaryDirectory { path in
            try withTemporaryDirectory { copy in
                let store = try openStore(path)
                defer { store.close() }
                for i in 0..<1000 { try store.set(bytes("k\(i)"), bytes("v")) }
                try snapshotNow(store)
                store.flush()
                try store.sync()
                try crashImage(of: path, into: copy)
                let reopened = try openStore(copy)
                defer { reopened.close() }
                reopened.waitForWarmUp()
                #expect(reopened.warmUp.loadedKeys == 0)
                #expect(reopened.get(bytes("k1")) == nil)
                #expect(try reopened.count() == 0)
            }
        }
    }

    /// A snapshot damaged in each way falls back to LMDB, and no key is lost.
    @Test(arguments: ["torn", "corrupt", "old format", "manifest gone"])
    func aDamagedSnapshotFallsBackToLMDB(_ damage: String) throws {
        try withTemporaryDirectory { path in
            let store = try openStore(path)
            for i in 0..<4000 { try store.set(bytes("k\(i)"), bytes("value \(i)")) }
            store.close()
            let files = try segments(path)
            #expect(files.count == SnapshotFiles.bucketCount)
            let victim = path + "/snapshot/" + files[files.count / 2]
            var content = try SnapshotFiles.readFile(victim)
            switch damage {
            case "torn": content = Array(content.prefix(content.count / 2))
            case "corrupt": content[content.count / 2] ^= 0x40
            case "old format":
                var manifest = try SnapshotFiles.readFile(path + "/snapshot/MANIFEST")
                manifest[8] = 99
                try SnapshotFiles.replace(path + "/snapshot/MANIFEST", with: manifest)
            default: try FileManager.default.removeItem(atPath: path + "/snapshot/MANIFEST")
            }
            if damage == "torn" || damage == "corrupt" { try SnapshotFiles.replace(victim, with: content) }
            let reopened = try openStore(path)
            defer { reopened.close() }
            reopened.waitForWarmUp()
            #expect(reopened.warmUp.done)
            let loaded = reopened.warmUp.loadedKeys
            if damage == "torn" || damage == "corrupt" { #expect(loaded > 3000 && loaded < 4000) } else { #expect(loaded == 0) }
            for i in 0..<4000 { #expect(reopened.get(bytes("k\(i)")) == bytes("value \(i)")) }
        }
    }

    @Test func onlyBucketsWithWritesAreRewritten() throws {
        try withTemporaryDirectory { path in
            let store = try openStore(path)
            defer { store.close() }
            for i in 0..<2000 { try store.set(bytes("k\(i)"), bytes("v")) }
            try snapshotNow(store)  // the first after a start: every bucket
            let first = try #require(store.writer.snapshots.manifest)
            try store.set(bytes("k7"), bytes("changed"))
            try store.sync()
            try snapshotNow(store)
            let second = try #require(store.writer.snapshots.manifest)
            let rewritten = zip(first.segments, second.segments).filter { $0.generation != $1.generation }.count
            #expect(rewritten == 1)
            try snapshotNow(store)  // nothing written since: nothing rewritten
            let third = try #require(store.writer.snapshots.manifest)
            #expect(zip(second.segments, third.segments).allSatisfy { $0.generation == $1.generation })
        }
    }
}
