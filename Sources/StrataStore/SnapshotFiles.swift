import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The hot-set snapshot's files, in `<data dir>/snapshot/`: made to be loaded at disk speed.
///
/// - `b<bucket>-<generation>.seg`: the records (as stored: compressed, with their headers) of the
///   memory tier's keys whose hash falls in one of `bucketCount` buckets, hottest first. Header
///   `STRATASG` + u32 format + u32 bucket; then blocks of about 256 KiB:
///   `[u32 payload length][u32 CRC-32C of payload][payload]`, payload entries
///   `[u32 rank][u32 key length][user key][u32 record length][record]`; the rank is the key's place
///   in the memory tier's recency order when the segment was written (0: most recent).
/// - `journal-<n>`: the XXH64 of the user key of every write applied to LMDB since the
///   snapshot began (u64 each, in frames `[u32 count][u32 CRC-32C][hashes]`), written and synced
///   before the LMDB commit holding the writes. A snapshot record whose key is in a journal is
///   older than LMDB's; the loader reads that key from LMDB instead.
/// - `MANIFEST`: `STRATAMF`, u32 format, u32 CRC-32C of the rest, then u64 generation, u64 the
///   first journal not covered by the snapshot, u32 bucket count, and per bucket u64 generation
///   of its segment (0: none) and u64 entries. Replaced by rename, so it is whole or absent.
///
/// A segment or manifest that is short, fails its checksum or has another format version is
/// skipped with a log line: the keys it held are read from LMDB when asked for.
enum SnapshotFiles {
    /// 2: CRC-32C checksums (1 used zlib's CRC-32).
    static let format: UInt32 = 2
    static let bucketCount = 64
    static let blockBytes = 256 << 10
    static let segmentMagic = Array("STRATASG".utf8)
    static let manifestMagic = Array("STRATAMF".utf8)

    /// The bucket of a key by its XXH64: the low 6 bits, as the memory tier's shard is (its up to
    /// 64 shards are the low bits), so every bucket lies in one shard and loading a shard's
    /// buckets merged by rank restores that shard's recency order exactly.
    @inline(__always)
    static func bucket(_ hash: UInt64) -> Int { Int(hash & 63) }

    static func directory(_ dataDirectory: String) -> String { dataDirectory + "/snapshot" }
    static func segmentName(bucket: Int, generation: UInt64) -> String { "b\(bucket)-\(generation).seg" }
    static func journalName(_ number: UInt64) -> String { "journal-\(number)" }

    struct Manifest {
        var generation: UInt64
        /// Journals numbered from this one hold writes the segments may not have.
        var journalFrom: UInt64
        /// Per bucket: the generation of its segment (0: none) and its entries.
        var segments: [(generation: UInt64, entries: UInt64)]

        var encoded: [UInt8] {
            var body: [UInt8] = []
            append(generation, to: &body)
            append(journalFrom, to: &body)
            append(UInt32(segments.count), to: &body)
            for segment in segments {
                append(segment.generation, to: &body)
                append(segment.entries, to: &body)
            }
            var out = manifestMagic
            append(format, to: &out)
            append(body.withUnsafeBytes { Checksum.crc32c($0) }, to: &out)
            return out + body
        }

        /// nil (with the reason) if the bytes are not a whole manifest of this format.
        static func decode(_ bytes: [UInt8]) -> Result<Manifest, SnapshotError> {
            guard bytes.count >= 16, Array(bytes[0..<8]) == manifestMagic else { return .failure(.damaged("not a manifest")) }
            let version = read(UInt32.self, bytes, 8)
            guard version == format else { return .failure(.otherFormat(version)) }
            let body = Array(bytes[16...])
            guard body.withUnsafeBytes({ Checksum.crc32c($0) }) == read(UInt32.self, bytes, 12), body.count >= 20 else {
                return .failure(.damaged("manifest checksum mismatch"))
            }
            let count = Int(read(UInt32.self, body, 16))
            guard count == bucketCount, body.count == 20 + count * 16 else { return .failure(.damaged("manifest size")) }
            let segments = (0..<count).map { i in (read(UInt64.self, body, 20 + i * 16), read(UInt64.self, body, 28 + i * 16)) }
            return .success(
                Manifest(generation: read(UInt64.self, body, 0), journalFrom: read(UInt64.self, body, 8), segments: segments))
        }
    }

    enum SnapshotError: Error, CustomStringConvertible {
        case damaged(String)
        case otherFormat(UInt32)
        case io(String)

        var description: String {
            switch self {
            case .damaged(let why): return "damaged (\(why))"
            case .otherFormat(let version): return "written in snapshot format \(version), this build reads \(SnapshotFiles.format)"
            case .io(let why): return why
            }
        }
    }

    static func append<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    static func read<T: FixedWidthInteger>(_: T.Type, _ bytes: [UInt8], _ offset: Int) -> T {
        bytes.withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: T.self)) }
    }

    // MARK: Files

    static func readFile(_ path: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else { throw SnapshotError.io("cannot read \(path)") }
        return [UInt8](data)
    }

    /// Writes `bytes` to `path` through a temporary file, synced, then renamed over it.
    static func replace(_ path: String, with bytes: [UInt8]) throws {
        let file = try AppendFile(path: path + ".tmp", truncate: true)
        defer { file.close() }
        try file.write(bytes)
        try file.sync()
        guard rename(path + ".tmp", path) == 0 else { throw SnapshotError.io("cannot rename \(path): \(errnoText())") }
    }

    static func syncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        Glibc.close(fd)
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }
}

/// A file written from the start or appended to, by one thread.
final class AppendFile {
    let path: String
    private let fd: Int32

    init(path: String, truncate: Bool) throws {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (truncate ? O_TRUNC : O_APPEND), 0o644)
        guard fd >= 0 else { throw SnapshotFiles.SnapshotError.io("cannot open \(path): \(SnapshotFiles.errnoText())") }
    }

    func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    func write(_ raw: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < raw.count {
            let n = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw SnapshotFiles.SnapshotError.io("cannot write \(path): \(SnapshotFiles.errnoText())")
            }
            offset += n
        }
    }

    func sync() throws {
        guard fdatasync(fd) == 0 else { throw SnapshotFiles.SnapshotError.io("cannot sync \(path): \(SnapshotFiles.errnoText())") }
    }

    func close() { Glibc.close(fd) }
}

/// Writes one bucket's segment: entries gathered into checksummed blocks.
final class SegmentWriter {
    private let file: AppendFile
    private var block: [UInt8] = []
    private(set) var entries: UInt64 = 0

    init(path: String, bucket: Int) throws {
        file = try AppendFile(path: path, truncate: true)
        var header = SnapshotFiles.segmentMagic
        SnapshotFiles.append(SnapshotFiles.format, to: &header)
        SnapshotFiles.append(UInt32(bucket), to: &header)
        try file.write(header)
        block.reserveCapacity(SnapshotFiles.blockBytes + 4096)
    }

    func add(rank: UInt32, key: UnsafeRawBufferPointer, record: UnsafeRawBufferPointer) throws {
        SnapshotFiles.append(rank, to: &block)
        SnapshotFiles.append(UInt32(key.count), to: &block)
        block.append(contentsOf: key)
        SnapshotFiles.append(UInt32(record.count), to: &block)
        block.append(contentsOf: record)
        entries += 1
        if block.count >= SnapshotFiles.blockBytes { try flushBlock() }
    }

    private func flushBlock() throws {
        guard !block.isEmpty else { return }
        var head: [UInt8] = []
        SnapshotFiles.append(UInt32(block.count), to: &head)
        SnapshotFiles.append(block.withUnsafeBytes { Checksum.crc32c($0) }, to: &head)
        try file.write(head)
        try file.write(block)
        block.removeAll(keepingCapacity: true)
    }

    /// Writes the last block. Not synced: after a power failure, a block that never reached the
    /// disk fails its checksum and is skipped, which costs warmth, never a wrong value.
    func finish() throws {
        defer { file.close() }
        try flushBlock()
    }

    func abandon() { file.close() }
}

/// Reads a segment block by block, checking each block's checksum, from a read-only mapping
/// of the file (no copy out of the page cache).
final class SegmentReader {
    let path: String
    @exclusivity(unchecked) private var file: UnsafeRawBufferPointer
    private var offset = 16

    /// Where the entries of the block read last are in the file.
    struct Entry {
        var rank: UInt32
        var key: Range<Int>
        var record: Range<Int>
    }
    @exclusivity(unchecked) private(set) var entries: [Entry] = []

    init(path: String, bucket: Int) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SnapshotFiles.SnapshotError.io("cannot open \(path): \(SnapshotFiles.errnoText())") }
        defer { Glibc.close(fd) }
        let size = Int(lseek(fd, 0, SEEK_END))
        guard size >= 16 else { throw SnapshotFiles.SnapshotError.damaged("not a segment") }
        guard let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), mapped != MAP_FAILED else {
            throw SnapshotFiles.SnapshotError.io("cannot map \(path): \(SnapshotFiles.errnoText())")
        }
        _ = madvise(mapped, size, MADV_SEQUENTIAL)
        file = UnsafeRawBufferPointer(start: mapped, count: size)
        guard Array(file[0..<8]) == SnapshotFiles.segmentMagic else {
            munmap(mapped, size)
            throw SnapshotFiles.SnapshotError.damaged("not a segment")
        }
        let version = u32(8)
        guard version == SnapshotFiles.format else {
            munmap(mapped, size)
            throw SnapshotFiles.SnapshotError.otherFormat(UInt32(version))
        }
        guard u32(12) == bucket else {
            munmap(mapped, size)
            throw SnapshotFiles.SnapshotError.damaged("segment of another bucket")
        }
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: file.baseAddress), file.count) }

    @inline(__always)
    private func u32(_ at: Int) -> Int { Int(UInt32(littleEndian: file.loadUnaligned(fromByteOffset: at, as: UInt32.self))) }

    /// Reads the next block into `entries`; false at the end of the segment. Throws for a block
    /// that is short (torn) or fails its checksum.
    func nextBlock() throws -> Bool {
        entries.removeAll(keepingCapacity: true)
        if offset == file.count { return false }
        guard offset + 8 <= file.count else { throw SnapshotFiles.SnapshotError.damaged("torn block header") }
        let length = u32(offset)
        let crc = UInt32(u32(offset + 4))
        let start = offset + 8
        guard length > 0, start + length <= file.count else { throw SnapshotFiles.SnapshotError.damaged("torn block") }
        let end = start + length
        guard Checksum.crc32c(UnsafeRawBufferPointer(rebasing: file[start..<end])) == crc else {
            throw SnapshotFiles.SnapshotError.damaged("block checksum mismatch")
        }
        var at = start
        func next() throws -> Int {
            guard at + 4 <= end else { throw SnapshotFiles.SnapshotError.damaged("entry") }
            defer { at += 4 }
            return u32(at)
        }
        while at < end {
            let rank = UInt32(try next())
            let keyLength = try next()
            guard at + keyLength <= end else { throw SnapshotFiles.SnapshotError.damaged("entry") }
            let key = at..<at + keyLength
            at += keyLength
            let recordLength = try next()
            guard at + recordLength <= end else { throw SnapshotFiles.SnapshotError.damaged("entry") }
            entries.append(Entry(rank: rank, key: key, record: at..<at + recordLength))
            at += recordLength
        }
        offset = end
        return true
    }

    /// Calls `body` with entry `index` of the block read last.
    @inline(__always)
    func withEntry<R>(_ index: Int, _ body: (_ key: UnsafeRawBufferPointer, _ record: UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        let entry = entries[index]
        return try body(UnsafeRawBufferPointer(rebasing: file[entry.key]), UnsafeRawBufferPointer(rebasing: file[entry.record]))
    }
}

/// The journal of writes applied since the snapshot began: storage-key hashes.
enum SnapshotJournal {
    /// Appends `hashes` as one frame.
    static func frame(_ hashes: [UInt64]) -> [UInt8] {
        var body: [UInt8] = []
        body.reserveCapacity(hashes.count * 8)
        for hash in hashes { SnapshotFiles.append(hash, to: &body) }
        var out: [UInt8] = []
        SnapshotFiles.append(UInt32(hashes.count), to: &out)
        SnapshotFiles.append(body.withUnsafeBytes { Checksum.crc32c($0) }, to: &out)
        return out + body
    }

    /// Every hash in the journal file's whole frames (a torn last frame is ignored: its writes'
    /// LMDB commit never happened, since the frame is synced first).
    static func read(_ path: String, into hashes: inout Set<UInt64>) {
        guard let bytes = try? SnapshotFiles.readFile(path) else { return }
        var offset = 0
        while offset + 8 <= bytes.count {
            let count = Int(SnapshotFiles.read(UInt32.self, bytes, offset))
            let crc = SnapshotFiles.read(UInt32.self, bytes, offset + 4)
            let end = offset + 8 + count * 8
            guard end <= bytes.count else { return }
            let ok = bytes.withUnsafeBytes { Checksum.crc32c(UnsafeRawBufferPointer(rebasing: $0[(offset + 8)..<end])) == crc }
            guard ok else { return }
            for i in 0..<count { hashes.insert(SnapshotFiles.read(UInt64.self, bytes, offset + 8 + i * 8)) }
            offset = end
        }
    }
}
