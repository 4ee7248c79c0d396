import Foundation
import Testing

@testable import StrataStore

@Suite struct TieredStoreTests {
    @Test func getSetDeleteExists() throws {
        try withTemporaryDirectory { path in
            let store = try openStore(path)
            defer { store.close() }
            #expect(store.get(bytes("missing")) == nil)
            try store.set(bytes("k"), bytes("v1"))
            #expect(store.get(bytes("k")) == bytes("v1"))
            try store.set(bytes("k"), bytes("v2"))
            #expect(store.get(bytes("k")) == bytes("v2"))
            #expect(store.exists(bytes("k")))
            #expect(try store.delete(bytes("k")))
            #expect(try !store.delete(bytes("k")))
            #expect(!store.exists(bytes("k")))
            #expect(store.get(bytes("k")) == nil)
        }
    }

    @Test func keysAndValuesAreBinarySafeAndLongKeysWork() throws {
        try withTemporaryDirectory { path in
            let store = try openStore(path)
            let binaryKey: [UInt8] = [0, 255, 13, 10, 0, 0]
            let binaryValue = (0..<1000).map { UInt8($0 % 256) }
            let longKey = Array(("https://example.com/search?q=" + String(repeating: "strata+", count: 300)).utf8)
            let longKey2 = longKey + [0x21]  // same 495-byte prefix, different key
            let empty: [UInt8] = []
            try store.set(binaryKey, binaryValue)
            try store.set(longKey, bytes("one"))
            try store.set(longKey2, bytes("two"))
            try store.set(empty, bytes("empty key"))
            try store.set(bytes("emptyvalue"), [])
            #expect(store.get(binaryKey) == binaryValue)
            #expect(store.get(longKey) == bytes("one"))
            #expect(store.get(longKey2) == bytes("two"))
            #expect(store.get(empty) == bytes("empty key"))
            #expect(store.get(bytes("emptyvalue")) == [])
            store.close()

            // From disk, after a restart, with an empty memory tier.
            let reopened = try openStore(path, warm: false)
            defer { reopened.close() }
            #expect(reopened.get(binaryKey) == binaryValue)
            #expect(reopened.get(longKey) == bytes("one"))
            #expect(reopened.get(longKey2) == bytes("two"))
            #expect(reopened.get(empty) == bytes("empty key"))
            #expect(reopened.get(bytes("emptyvalue")) == [])
            let (keys, next) = try reopened.scan(cursor: nil, count: 100)
            #expect(next == nil)
            #expect(Set(keys) == Set([binaryKey, longKey, longKey2, empty, bytes("emptyvalue")]))
            #expect(try reopened.delete(longKey))
            #expect(reopened.get(longKey) == nil)
            #expect(reopened.get(longKey2) == bytes("two"))
        }
    }

    @Test func conditionalSetsAndUpdate() throws {
        try withTemporaryDirectory { path in
            let store = try openStore(path)
            defer { store.close() }
            #expect(try !store.set(bytes("k"), bytes("x"), condition: .ifPresent))
            #expect(store.get(bytes("k")) == nil)
            #expect(try store.set(bytes("k"), bytes("a"), condition: .ifAbsent))
            #expect(try !store.set(bytes("k"), bytes("b"), condition: .ifAbsent))
            #expect(store.get(bytes("k")) == bytes("a"))
            #expect(try store.set(bytes("k"), bytes("c"), condition: .ifPresent))
            #expect(store.get(bytes("k")) == bytes("c"))
            // A counter incremented concurrently from many threads loses no increment.
            DispatchQueue.concurrentPerform(iterations: 8) { _ in
                for _ in 0..<500 {
                    _ = try? store.update(bytes("counter")) { current -> (Mutation, Void) in
                        let n = current.flatMap { Int(String(decoding: $0.value, as: UTF8.self)) } ?? 0
                        return (.set(value: bytes(String(n + 1)), expiresAt: 0), ())
                    }
                }
            }
            #expect(store.get(bytes("counter")) == bytes("4000"))
        }
    }

    @Test func expiryInBothTiersAndAcrossRestart() throws {
        try withTemporaryDirectory { path in
            let store = try openStore(path, memory: 64 << 10, shards: 1)
            let now = currentTimeMilliseconds()
            try store.set(bytes("short"), bytes("v"), expiresAt: now + 150)
            try store.set(bytes("long"), bytes("v"), expiresAt: now + 600_000)
            try store.set(bytes("forever"), bytes("v"))
            #expect(store.expiry(of: bytes("short")) == now + 150)
            #expect(store.expiry(of: bytes("forever")) == 0)
            #expect(store.expiry(of: bytes("nothing")) == nil)
            // Push "short" out of memory so the disk tier's own expiry is tested too.
            for i in 0..<2000 { try store.set(bytes("filler\(i)"), [UInt8](repeating: 1, count: 100)) }
            #expect(store.tier(of: bytes("short")).tier == .disk)
            usleep(200_000)
            #expect(store.get(bytes("short")) == nil)
            #expect(!store.exists(bytes("short")))
            #expect(store.get(bytes("long")) == bytes("v"))
            #expect(try store.persist(bytes("long")))
            #expect(store.expiry(of: bytes("long")) == 0)
            #expect(try store.expire(bytes("forever"), at: now + 300))
            #expect(try !store.expire(bytes("nothing"), at: now + 300))
            // Expire with a time in the past deletes.
            try store.set(bytes("gone"), bytes("v"))
            #expect(try store.expire(bytes("gone"), at: now - 1))
            #expect(store.get(bytes("gone")) == nil)
            store.close()
            usleep(400_000)
            let reopened = try openStore(path)
            defer { reopened.close() }
            #expect(reopened.get(bytes("forever")) == nil)
            #expect(reopened.get(bytes("long")) == bytes("v"))
            #expect(reopened.expiry(of: bytes("long")) == 0)
            // The sweep removes expired records from disk without anyone reading them.
            let count = try reopened.count()
            #expect(eventually { (try? reopened.count()) ?? 0 < count || count == 2001 })
        }
    }

    @Test func aDiskTierInThePageCacheIsReportedResident() throws {
        try withTemporaryDirectory { path in
            let store = try openStore(path, memory: 1 << 20, disk: 64 << 20)
            defer { store.close() }
            let value = [UInt8](repeating: 1, count: 500)
            for i in 0..<5000 { try store.set(bytes("r\(i)"), value) }
            // Just written, every page is in the page cache; the check runs every two seconds.
            #expect(eventually(seconds: 10) { store.diskReadsAreResident })
        }
    }

    @Test func theResidencySampleSeesPagesLeaveAndReturnToThePageCache() throws {
        try withTemporaryDirectory { path in
            let value = [UInt8](repeating: 7, count: 1000)
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            do {
                let env = try LMDBEnvironment(path: path, mapSize: 256 << 20, maxDatabases: 2, noSync: false)
                defer { env.close() }
                let txn = try env.beginWrite()
                let dbi = try txn.openDatabase("d", create: true)
                for i in 0..<20_000 {
                    try Array("key\(i)".utf8).withUnsafeBytes { k in try value.withUnsafeBytes { try txn.put(dbi, k, $0) } }
                }
                try txn.commit()
            }
            // Closed, nothing maps the file: synced pages can be dropped from the page cache.
            let fd = open(path + "/data.mdb", O_RDONLY)
            #expect(fd >= 0)
            defer { close(fd) }
            _ = fdatasync(fd)
            #expect(posix_fadvise(fd, 0, 0, Int32(POSIX_FADV_DONTNEED)) == 0)
            let env = try LMDBEnvironment(path: path, mapSize: 256 << 20, maxDatabases: 2, noSync: false)
            defer { env.close() }
            var random = SystemRandomNumberGenerator()
            let cold = env.residentShare(using: &random)
            #expect(cold < 0.5, "after POSIX_FADV_DONTNEED, \(cold) of the sampled pages were resident")
            // Reading the whole file brings every page back.
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            while read(fd, &buffer, buffer.count) > 0 {}
            let warm = env.residentShare(using: &random)
            #expect(warm >= 0.99, "after reading the file, only \(warm) of the sampled pages were resident")
        }
    }

    @Test func aWriteBurstFillsTheQueueToItsLimitThenDrains() throws {
        try withTemporaryDirectory { path in
            // A 64 MiB disk budget: batches of 6.4 MiB, so the queue's limit is 12.8 MiB.
            let store = try openStore(path, memory: 4 << 20, disk: 64 << 20)
            defer { store.close() }
            var generator = SystemRandomNumberGenerator()
            let value = (0..<(32 << 10)).map { _ in UInt8.random(in: 0...255, using: &generator) }  // incompressible
            var sawBacklog = false
            do {
                // LMDB takes one write transaction at a time: while this test holds one, the
                // writer cannot apply, so 40 MiB of writes must fill the queue whatever the
                // machine's speed (a race between two threads' speeds made this test flaky).
                let hold = try store.disk.env.beginWrite()
                for i in 0..<1280 {
                    var v = value
                    v[0] = UInt8(truncatingIfNeeded: i)
                    try store.set(bytes("burst\(i)"), v)
                    if store.isWriteBacklogged { sawBacklog = true }
                }
                _ = consume hold  // aborted: the writer goes on
            }
            #expect(sawBacklog, "40 MiB written while the disk tier was held never filled a 12.8 MiB queue")
            #expect(eventually(seconds: 30) { !store.isWriteBacklogged })
            #expect(try store.count() == 1280)
        }
    }

    @Test func tierCountersCountReadsOnlyOnce() throws {
        try withTemporaryDirectory { path in
            let store = try openStore(path, memory: 64 << 10, shards: 1)
            defer { store.close() }
            let value = [UInt8](repeating: 7, count: 1000)
            for i in 0..<500 { try store.set(bytes("key\(i)"), value) }
            #expect(store.tier(of: bytes("key0")).tier == .disk)
            let before = store.statistics
            // Writes look keys up (to keep expiry, or for NX), but they are not reads.
            for i in 0..<50 { try store.set(bytes("key\(i)"), value) }
            for i in 500..<550 { try store.set(bytes("key\(i)"), value) }
            #expect(try !store.set(bytes("key1"), value, condition: .ifAbsent))
            #expect(store.statistics.diskHits == before.diskHits)
            #expect(store.statistics.diskMisses == before.diskMisses)
            // A read that misses memory (counted once by getFromMemory) and is found on disk.
            let key = bytes("key100")
            #expect(store.tier(of: key).tier == .disk)
            let memoryMissesBefore = store.statistics.memoryMisses
            let read = key.withUnsafeBytes { k in store.getFromMemory(k) { $0.count } }
            guard case .miss = read else { Issue.record("key100 was in memory"); return }
            let found = try key.withUnsafeBytes { k in try store.getAfterMemoryMiss(k) { $0.count } }
            #expect(found == 1000)
            let after = store.statistics
            #expect(after.memoryMisses == memoryMissesBefore + 1)
            #expect(after.diskHits == before.diskHits + 1)
            // And a key that is nowhere is one memory miss and one disk miss.
            let absent = bytes("nowhere")
            let misses = (after.memoryMisses, after.diskMisses)
            #expect(try absent.withUnsafeBytes { k in try store.get(k) { $0.count } } == nil)
            #expect(store.statistics.memoryMisses == misses.0 + 1)
            #expect(store.statistics.diskMisses == misses.1 + 1)
        }
    }

    @Test func memoryEvictionSpillsToDiskAndPromotesBack() throws {
        try withTemporaryDirectory { path in
            let memory = 256 << 10
            let store = try openStore(path, memory: memory, shards: 4)
            defer { store.close() }
            let value = [UInt8](repeating: 7, count: 1000)
            for i in 0..<2000 { try store.set(bytes("key\(i)"), value) }
            let stats = store.statistics
            #expect(stats.memoryBytes <= memory)
            #expect(stats.memoryItems < 2000)
            #expect(stats.memoryEvictions > 0)
            // Every key still reads back: the cold ones from disk.
            #expect(store.tier(of: bytes("key0")).tier == .disk)
            for i in 0..<2000 { #expect(store.get(bytes("key\(i)")) == value) }
            #expect(store.statistics.diskHits > 0)
            #expect(store.tier(of: bytes("key0")).tier == .disk || store.tier(of: bytes("key1999")).tier == .memory)
            _ = store.get(bytes("key5"))
            #expect(store.tier(of: bytes("key5")).tier == .memory)
            #expect(store.statistics.memoryBytes <= memory)
            #expect(try store.count() == 2000)
        }
    }

    @Test func largeValuesAreStoredCompressed() throws {
        try withTemporaryDirectory { path in
            let store = try openStore(path, threshold: 1024)
            defer { store.close() }
            let json = bytes(String(repeating: "{\"user\":12345,\"name\":\"strata\"},", count: 2000))
            try store.set(bytes("big"), json)
            try store.set(bytes("small"), bytes("tiny"))
            let big = store.tier(of: bytes("big"))
            #expect(big.compressed)
            #expect(big.valueLength == json.count)
            #expect(big.storedLength < json.count / 4)
            #expect(!store.tier(of: bytes("small")).compressed)
            #expect(store.get(bytes("big")) == json)
            let stats = store.statistics
            #expect(stats.compressionBytesIn == json.count)
            #expect(stats.compressionBytesOut < json.count / 4)
            store.close()
            let reopened = try openStore(path, warm: false)
            defer { reopened.close() }
            #expect(reopened.get(bytes("big")) == json)
        }
    }

    @Test func scanVisitsEveryKeyOnceAcrossPages() throws {
        try withTemporaryDirectory { path in
            let store = try openStore(path)
            defer { store.close() }
            var expected = Set<[UInt8]>()
            for i in 0..<1234 {
                let key = bytes("scan:\(i)")
                expected.insert(key)
                try store.set(key, bytes("v"))
            }
            try store.set(bytes("expired"), bytes("v"), expiresAt: currentTimeMilliseconds() - 1)
            var seen: [[UInt8]] = []
            var cursor: [UInt8]? = nil
            var pages = 0
            repeat {
                let (keys, next) = try store.scan(cursor: cursor, count: 100)
                seen += keys
                cursor = next
                pages += 1
            } while cursor != nil && pages < 100
            #expect(seen.count == 1234)
            #expect(Set(seen) == expected)
            #expect(pages >= 12)
            store.flush()
            #expect(try store.count() == 0)
            #expect(store.get(bytes("scan:1")) == nil)
            #expect(try store.scan(cursor: nil, count: 10).keys.isEmpty)
        }
    }

    @Test func diskBudgetEvictsOldestAndRejectsHugeValues() throws {
        try withTemporaryDirectory { path in
            let budget = 4 << 20
            let store = try openStore(path, memory: 128 << 10, disk: budget, shards: 1)
            defer { store.close() }
            let value = [UInt8]((0..<1000).map { UInt8($0 % 251) })
            // ~12 MB of writes into a 4 MiB disk tier.
            for i in 0..<12_000 { try store.set(bytes("k\(i)"), value) }
            try store.sync()
            let stats = store.statistics
            #expect(stats.diskEvictions > 0)
            #expect(stats.diskBytes <= budget)
            // The newest keys survive; the oldest were evicted first.
            #expect(store.get(bytes("k11999")) == value)
            var oldSurvivors = 0
            for i in 0..<1000 where store.exists(bytes("k\(i)")) { oldSurvivors += 1 }
            var newSurvivors = 0
            for i in 11_000..<12_000 where store.exists(bytes("k\(i)")) { newSurvivors += 1 }
            #expect(newSurvivors > oldSurvivors)
            #expect(newSurvivors > 900)
            // A value larger than the tier can hold is refused with a clear error; nothing else changes.
            let huge = [UInt8](repeating: 1, count: budget)
            #expect {
                try store.set(bytes("huge"), huge)
            } throws: { error in
                (error as? StoreError)?.code == .valueTooLarge
            }
            #expect(store.get(bytes("k11999")) == value)
            // Reads keep working.
            #expect(store.get(bytes("huge")) == nil)
        }
    }

    @Test func damagedRecordIsAMissNotWrongBytes() throws {
        try withTemporaryDirectory { path in
            let store = try openStore(path, warm: false)
            try store.set(bytes("good"), bytes("fine"))
            try store.set(bytes("bad"), bytes("original value"))
            store.close()
            // Flip a byte of the stored record through LMDB itself.
            let disk = try DiskTier(path: path, budget: 64 << 20, noSync: false)
            let txn = try disk.env.beginWrite()
            var record = try bytes("bad").withUnsafeBytes { try txn.get(disk.data, $0).map { [UInt8]($0) } }!
            record[record.count - 1] ^= 0xFF
            try bytes("bad").withUnsafeBytes { k in try record.withUnsafeBytes { try txn.put(disk.data, k, $0) } }
            try txn.commit()
            disk.close()

            let reopened = try openStore(path, warm: false)
            defer { reopened.close() }
            #expect(reopened.get(bytes("bad")) == nil)
            #expect(reopened.statistics.crcFailures == 1)
            #expect(reopened.get(bytes("good")) == bytes("fine"))
            // It is removed from disk.
            #expect(eventually { (try? reopened.count()) == 1 })
            // And the key can be written again.
            try reopened.set(bytes("bad"), bytes("new"))
            #expect(reopened.get(bytes("bad")) == bytes("new"))
        }
    }

    @Test func directoryIsOwnedByOneStoreAndForeignDirectoriesAreRefused() throws {
        try withTemporaryDirectory { path in
            let store = try openStore(path)
            #expect {
                _ = try openStore(path)
            } throws: { error in
                let e = error as? StoreError
                return e?.code == .directoryInUse && e!.message.contains("in use")
            }
            store.close()
            let again = try openStore(path)
            again.close()

            // A newer layout is refused.
            try "strata-data-directory 99\n".write(toFile: path + "/STRATA", atomically: true, encoding: .utf8)
            #expect {
                _ = try openStore(path)
            } throws: { error in
                (error as? StoreError)?.code == .incompatibleDirectory
            }
        }
        try withTemporaryDirectory { path in
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            try "my photos".write(toFile: path + "/holiday.jpg", atomically: true, encoding: .utf8)
            #expect {
                _ = try openStore(path)
            } throws: { error in
                let e = error as? StoreError
                return e?.code == .incompatibleDirectory && e!.message.contains("not a Strata data directory")
            }
            #expect(FileManager.default.fileExists(atPath: path + "/holiday.jpg"))
        }
    }

    @Test func badConfigurationIsRefused() throws {
        try withTemporaryDirectory { path in
            #expect(throws: StoreError.self) { _ = try openStore(path, disk: 1000) }
        }
        #expect(parseByteSize("512MiB") == 512 << 20)
        #expect(parseByteSize("4GiB") == 4 << 30)
        #expect(parseByteSize("64kb") == 64 << 10)
        #expect(parseByteSize("1g") == 1 << 30)
        #expect(parseByteSize("12345") == 12345)
        #expect(parseByteSize("12 parsecs") == nil)
        #expect(parseByteSize("") == nil)
        #expect(parseByteSize("-5") == nil)
    }
}
