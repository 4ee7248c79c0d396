import Foundation
import Logging
import CStrataSystem
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

extension AppendFile: @unchecked Sendable {}  // used under `Snapshots`' lock, by one thread at a time

/// Takes the hot-set snapshot (`SnapshotFiles`) and keeps the journal of writes since it began.
///
/// A snapshot is incremental: only the buckets in which a write was applied since the last one
/// are rewritten (every bucket after a start, a flush, every `fullEvery`th snapshot, or when the
/// memory tier's membership drifted, so keys that left memory do not linger). It runs on a thread
/// of its own, reading LMDB through a read transaction, so the writer is never held up: writes
/// applied meanwhile go to the next journal, which the loader treats as newer than the snapshot.
final class Snapshots: Sendable {
    /// Every this many snapshots, all buckets are rewritten.
    static let fullEvery = 10

    let directory: String
    let logger: Logger

    private struct JournalState {
        /// The journal new writes are recorded in.
        var number: UInt64
        var file: AppendFile?
        /// Buckets written to since the snapshot began (bit per bucket).
        var dirty: UInt64 = 0
        /// Rewrite every bucket next time.
        var full = true
        var snapshots = 0
    }

    private struct Installed {
        var manifest: SnapshotFiles.Manifest?
        /// Raised by a flush: a snapshot begun before it must not be installed.
        var invalidations: UInt64 = 0
    }

    /// One snapshot to write: which buckets, and where the journal was cut.
    struct Job: Sendable {
        var buckets: UInt64
        /// At shutdown: write on `threads` threads at normal priority; otherwise in the background.
        var urgent = false
        var threads = 1
        /// The journal begun with it: everything from it on is newer than what this job reads.
        var journalFrom: UInt64
        var invalidations: UInt64
    }

    private let journal: Locked<JournalState>
    private let installed: Locked<Installed>
    let running = Atomic<Bool>(false)

    /// Opens (creating) the directory and reads the manifest; `manifest` is the snapshot a warm
    /// start loads (nil: none usable, with the reason logged).
    init(dataDirectory: String, logger: Logger) {
        directory = SnapshotFiles.directory(dataDirectory)
        self.logger = logger
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var manifest: SnapshotFiles.Manifest? = nil
        if let bytes = try? SnapshotFiles.readFile(directory + "/MANIFEST") {
            switch SnapshotFiles.Manifest.decode(bytes) {
            case .success(let m): manifest = m
            case .failure(let reason):
                logger.warning("hot-set snapshot manifest skipped; the warm start reads LMDB instead", metadata: ["reason": "\(reason)"])
            }
        }
        let journals = Snapshots.journalNumbers(in: directory)
        let next = max(journals.max().map { $0 + 1 } ?? 1, manifest?.journalFrom ?? 1)
        journal = Locked(JournalState(number: next))
        installed = Locked(Installed(manifest: manifest))
    }

    var manifest: SnapshotFiles.Manifest? { installed.withLock { $0.manifest } }

    static func journalNumbers(in directory: String) -> [UInt64] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.compactMap { name in name.hasPrefix("journal-") ? UInt64(name.dropFirst(8)) : nil }
    }

    // MARK: Writer thread

    /// Records the user-key hashes of a batch about to be committed to LMDB, synced first
    /// (`sync`) so that a commit that survives a crash has its journal entry too.
    func record(_ hashes: [UInt64], sync: Bool) throws {
        guard !hashes.isEmpty else { return }
        try journal.withLock { j in
            if j.file == nil {
                j.file = try AppendFile(path: directory + "/" + SnapshotFiles.journalName(j.number), truncate: false)
            }
            try j.file!.write(SnapshotJournal.frame(hashes))
            if sync { try j.file!.sync() }
            for hash in hashes { j.dirty |= 1 << UInt64(SnapshotFiles.bucket(hash)) }
        }
    }

    /// Before a flush is committed: the snapshot holds flushed records, so it goes (and one being
    /// written now will not be installed).
    func invalidate() {
        installed.withLock { s in
            s.invalidations += 1
            s.manifest = nil
            unlink(directory + "/MANIFEST")
        }
        SnapshotFiles.syncDirectory(directory)
        journal.withLock { $0.full = true }
    }

    /// Starts a snapshot: cuts the journal and takes the buckets to rewrite. nil if one is running.
    /// `drifted`: the memory tier's keys changed much without writes (promotions, evictions).
    func begin(drifted: Bool) -> Job? {
        guard !running.exchange(true, ordering: .acquiringAndReleasing) else { return nil }
        let invalidations = installed.withLock { $0.invalidations }
        return journal.withLock { j in
            j.snapshots += 1
            let full = j.full || drifted || j.snapshots % Snapshots.fullEvery == 0
            let job = Job(buckets: full ? UInt64.max : j.dirty, journalFrom: j.number + 1, invalidations: invalidations)
            j.file?.close()
            j.file = nil
            j.number += 1
            j.dirty = 0
            j.full = false
            return job
        }
    }

    // MARK: Snapshot thread

    /// Writes the job's buckets from `packedKeys` (`[u32 length][key]` each, hottest first),
    /// reading each record through an LMDB read transaction, then installs the new manifest and
    /// removes what it replaced. Returns the entries written.
    func write(_ job: Job, packedKeys: [UInt8], disk: DiskTier) throws -> Int {
        defer { running.store(false, ordering: .releasing) }
        do {
            return try writeUnlessFlushed(job, packed: packedKeys, disk: disk)
        } catch {
            // What the job would have covered must be rewritten next time.
            journal.withLock { $0.full = true }
            throw error
        }
    }

    private func writeUnlessFlushed(_ job: Job, packed: [UInt8], disk: DiskTier) throws -> Int {
        let previous = manifest
        var segments = previous?.segments ?? Array(repeating: (0, 0), count: SnapshotFiles.bucketCount)
        let generation = (previous?.generation ?? 0) + 1
        // Keys by bucket, hottest first within each: each its rank among all (high 32 bits) and
        // where its entry starts in `packed` (low 32), 8 bytes a key while the snapshot is taken.
        var byBucket = [[UInt64]](repeating: [], count: SnapshotFiles.bucketCount)
        packed.withUnsafeBytes { all in
            var offset = 0
            var rank: UInt64 = 0
            while offset + 4 <= all.count && offset <= Int(UInt32.max) {
                let length = Int(UInt32(littleEndian: all.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
                let key = offset + 4..<min(all.count, offset + 4 + length)
                let bucket = SnapshotFiles.bucket(StableHash.hash(UnsafeRawBufferPointer(rebasing: all[key])))
                if job.buckets & (1 << UInt64(bucket)) != 0 { byBucket[bucket].append(rank << 32 | UInt64(offset)) }
                offset = key.upperBound
                rank += 1
            }
        }
        // Buckets are split between `threads` threads, each with its own LMDB read transaction.
        let results = Locked<[(bucket: Int, entries: UInt64)]>([])
        let failure = Locked<(any Error)?>(nil)
        let buckets = (0..<SnapshotFiles.bucketCount).filter { job.buckets & (1 << UInt64($0)) != 0 }
        let lists = byBucket
        let directory = self.directory
        let work: @Sendable (Int) -> Void = { thread in
            if !job.urgent { _ = strata_set_thread_nice(10) }
            do {
                let txn = try disk.env.beginRead()
                for bucket in buckets where bucket % job.threads == thread && failure.withLock({ $0 == nil }) {
                    let name = SnapshotFiles.segmentName(bucket: bucket, generation: generation)
                    let segment = try SegmentWriter(path: directory + "/" + name, bucket: bucket)
                    do {
                        try packed.withUnsafeBytes { all in
                            for entry in lists[bucket] {
                                let offset = Int(entry & 0xFFFF_FFFF)
                                let length = Int(UInt32(littleEndian: all.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
                                let key = UnsafeRawBufferPointer(rebasing: all[offset + 4..<min(all.count, offset + 4 + length)])
                                try disk.withStorageKey(key) { storage in
                                    guard let record = try txn.get(disk.data, storage) else { return }
                                    try segment.add(rank: UInt32(truncatingIfNeeded: entry >> 32), key: key, record: record)
                                }
                            }
                        }
                        try segment.finish()
                    } catch {
                        segment.abandon()
                        unlink(directory + "/" + name)
                        throw error
                    }
                    let entries = segment.entries
                    results.withLock { $0.append((bucket, entries)) }
                }
            } catch {
                failure.withLock { $0 = $0 ?? error }
            }
        }
        let helpers = (1..<max(1, job.threads)).map { thread in StoreThread(name: "strata-snapshot") { work(thread) } }
        work(0)
        for helper in helpers { helper.join() }
        if let error = failure.withLock({ $0 }) {
            for (bucket, _) in results.withLock({ $0 }) {
                unlink(directory + "/" + SnapshotFiles.segmentName(bucket: bucket, generation: generation))
            }
            throw error
        }
        var written = 0
        for (bucket, entries) in results.withLock({ $0 }) {
            segments[bucket] = (generation, entries)
            written += Int(entries)
        }
        SnapshotFiles.syncDirectory(directory)
        let manifest = SnapshotFiles.Manifest(generation: generation, journalFrom: job.journalFrom, segments: segments)
        let installedIt = try installed.withLock { s -> Bool in
            guard s.invalidations == job.invalidations else { return false }  // flushed meanwhile
            try SnapshotFiles.replace(directory + "/MANIFEST", with: manifest.encoded)
            s.manifest = manifest
            return true
        }
        SnapshotFiles.syncDirectory(directory)
        removeUnused(keeping: installedIt ? manifest : self.manifest, journalFrom: installedIt ? job.journalFrom : nil)
        return installedIt ? written : 0
    }

    /// Removes segments the manifest does not name and journals it no longer needs. Only the
    /// running snapshot calls it, so no segment is being written.
    private func removeUnused(keeping manifest: SnapshotFiles.Manifest?, journalFrom: UInt64?) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        let wanted = Set(
            (manifest?.segments ?? []).enumerated().compactMap { bucket, segment in
                segment.generation == 0 ? nil : SnapshotFiles.segmentName(bucket: bucket, generation: segment.generation)
            })
        for name in names {
            if name.hasSuffix(".seg") || name.hasSuffix(".tmp") {
                if !wanted.contains(name) { unlink(directory + "/" + name) }
            } else if name.hasPrefix("journal-"), let number = UInt64(name.dropFirst(8)), let from = journalFrom, number < from {
                unlink(directory + "/" + name)
            }
        }
    }

    /// Journals from `from` on: the user-key hashes of writes the segments may not hold.
    func changedSince(_ from: UInt64) -> Set<UInt64> {
        var hashes = Set<UInt64>()
        for number in Snapshots.journalNumbers(in: directory) where number >= from {
            SnapshotJournal.read(directory + "/" + SnapshotFiles.journalName(number), into: &hashes)
        }
        return hashes
    }

    func close() {
        journal.withLock { j in
            j.file?.close()
            j.file = nil
        }
    }
}
