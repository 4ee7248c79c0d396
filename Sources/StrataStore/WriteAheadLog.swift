import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The write-ahead log: every queued write is appended here within a millisecond or two, in
/// order, and applied to LMDB later in large batches (`Writer`).
///
/// Why: LMDB is a copy-on-write B-tree; committing a handful of random keys rewrites a page each,
/// so committing every few milliseconds writes kilobytes per key. Appending to a log costs the
/// bytes of the write, sequentially, and `fdatasync` of a log is cheap; applying to LMDB once a
/// second lets one page absorb many writes and a hot key's many writes collapse into one.
/// After a crash, `replay` re-applies whatever the log holds (re-applying is harmless: every frame
/// sets a key to a whole record, deletes it, or clears everything).
///
/// Frame: `[u32 payload length][u32 CRC-32][payload]`, little-endian; payload:
/// `[u8 kind: 1 put, 2 delete, 3 clear][u32 key length][key][u32 record length][record]`.
/// The frame's CRC covers the payload up to the record; the record carries its own CRC (see
/// `Record`), so no byte is checksummed twice. Replay stops at the first frame that is short or
/// fails either check (a write torn by the crash) and cuts the file there.
///
/// Used only by the writer thread (and by `open` before that thread starts).
final class WriteAheadLog: @unchecked Sendable {
    enum Kind: UInt8 {
        case put = 1
        case delete = 2
        case clear = 3
    }

    let path: String
    private var fd: Int32
    /// `wal.applying`: the log as it was when the batch being applied was taken. Appends go to a
    /// new `wal` meanwhile, and the old file goes once the batch is in LMDB, so the log holds
    /// about two batches' writes however long writes keep coming.
    var applyingPath: String { path + ".applying" }
    private(set) var hasApplying = false

    init(directory: String) throws {
        path = directory + "/wal"
        fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw StoreError(.directoryUnusable, "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        hasApplying = access(applyingPath, F_OK) == 0
    }

    /// Moves the log aside as `wal.applying` and starts an empty one, unless a moved log still
    /// waits for its batch (an apply failed and is retried).
    func rotate() throws {
        guard !hasApplying else { return }
        guard rename(path, applyingPath) == 0 else {
            throw StoreError(.storage, "write-ahead log rotation failed: \(String(cString: strerror(errno)))")
        }
        let next = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard next >= 0 else {
            _ = rename(applyingPath, path)
            throw StoreError(.storage, "cannot open a new write-ahead log: \(String(cString: strerror(errno)))")
        }
        Glibc.close(fd)
        fd = next
        hasApplying = true
        // The new file's name must survive a power failure with the writes synced into it.
        let directory = open(String(path.dropLast(4)), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directory >= 0 {
            _ = fsync(directory)
            Glibc.close(directory)
        }
    }

    /// Drops `wal.applying` once its batch is in LMDB and synced.
    func dropApplied() {
        guard hasApplying else { return }
        unlink(applyingPath)
        hasApplying = false
    }

    func close() {
        Glibc.close(fd)
    }

    /// Serialises one frame onto `buffer`.
    static func frame(_ kind: Kind, key: [UInt8], record: [UInt8]?, into buffer: inout [UInt8]) {
        let payloadLength = 1 + 4 + key.count + 4 + (record?.count ?? 0)
        let start = buffer.count
        appendU32(UInt32(payloadLength), to: &buffer)
        appendU32(0, to: &buffer)  // CRC, filled in below
        buffer.append(kind.rawValue)
        appendU32(UInt32(key.count), to: &buffer)
        buffer.append(contentsOf: key)
        appendU32(UInt32(record?.count ?? 0), to: &buffer)
        if let record { buffer.append(contentsOf: record) }
        let recordStart = buffer.count - (record?.count ?? 0)
        let crc = buffer.withUnsafeBytes { Checksum.crc32(UnsafeRawBufferPointer(rebasing: $0[(start + 8)..<recordStart])) }
        withUnsafeBytes(of: crc.littleEndian) { bytes in
            for i in 0..<4 { buffer[start + 4 + i] = bytes[i] }
        }
    }

    private static func appendU32(_ value: UInt32, to buffer: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { buffer.append(contentsOf: $0) }
    }

    /// Appends serialised frames; throws (and appends nothing usable) on a write error.
    func append(_ bytes: [UInt8]) throws {
        var offset = 0
        try bytes.withUnsafeBytes { raw in
            while offset < raw.count {
                let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    let code = errno
                    throw StoreError(
                        code == ENOSPC || code == EDQUOT ? .diskFull : .storage,
                        "write-ahead log append failed: \(String(cString: strerror(code)))")
                }
                offset += n
            }
        }
    }

    func sync() throws {
        guard fdatasync(fd) == 0 else {
            throw StoreError(.storage, "write-ahead log sync failed: \(String(cString: strerror(errno)))")
        }
    }

    /// Empties the log (after its frames are applied to LMDB and LMDB is synced).
    func reset() throws {
        guard ftruncate(fd, 0) == 0 else {
            throw StoreError(.storage, "write-ahead log truncate failed: \(String(cString: strerror(errno)))")
        }
    }

    /// Calls `body` for every intact frame in order, `wal.applying`'s first; cuts off a torn
    /// tail. Returns the frame count.
    func replay(_ body: (Kind, [UInt8], [UInt8]) throws -> Void) throws -> Int {
        var frames = 0
        if hasApplying {
            let old = open(applyingPath, O_RDWR | O_CLOEXEC)
            if old >= 0 {
                defer { Glibc.close(old) }
                frames += try replay(old, body)
            }
        }
        return frames + (try replay(fd, body))
    }

    private func replay(_ fd: Int32, _ body: (Kind, [UInt8], [UInt8]) throws -> Void) throws -> Int {
        let size = lseek(fd, 0, SEEK_END)
        guard size > 0 else { return 0 }
        var data = [UInt8](repeating: 0, count: Int(size))
        var read = 0
        while read < data.count {
            let n = data.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + read, $0.count - read, off_t(read)) }
            if n < 0 && errno == EINTR { continue }
            // A read error must not pass for the end of the log: the log is emptied after replay.
            if n < 0 { throw StoreError(.storage, "write-ahead log read failed: \(String(cString: strerror(errno)))") }
            guard n > 0 else { break }
            read += n
        }
        var offset = 0
        var frames = 0
        func u32(_ at: Int) -> Int {
            data.withUnsafeBytes { Int(UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: at, as: UInt32.self))) }
        }
        while offset + 8 <= read {
            let length = u32(offset)
            guard length >= 9, offset + 8 + length <= read else { break }
            let stored = UInt32(u32(offset + 4))
            guard let kind = Kind(rawValue: data[offset + 8]) else { break }
            let keyLength = u32(offset + 9)
            guard 17 + keyLength <= 8 + length else { break }
            let key = Array(data[(offset + 13)..<(offset + 13 + keyLength)])
            let recordLength = u32(offset + 13 + keyLength)
            let recordStart = offset + 17 + keyLength
            guard recordStart + recordLength == offset + 8 + length else { break }
            let crc = data.withUnsafeBytes { Checksum.crc32(UnsafeRawBufferPointer(rebasing: $0[(offset + 8)..<recordStart])) }
            guard crc == stored else { break }
            if recordLength > 0 {
                let intact = data.withUnsafeBytes { raw in
                    (try? Record.header(UnsafeRawBufferPointer(rebasing: raw[recordStart..<(recordStart + recordLength)]))) != nil
                }
                guard intact else { break }
            }
            try body(kind, key, Array(data[recordStart..<(recordStart + recordLength)]))
            frames += 1
            offset += 8 + length
        }
        if offset < Int(size) {
            guard ftruncate(fd, off_t(offset)) == 0 else {
                throw StoreError(.storage, "write-ahead log truncate failed: \(String(cString: strerror(errno)))")
            }
        }
        return frames
    }
}
