import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A Strata data directory, owned by this process while open.
///
/// `STRATA` marks the directory as Strata's and names its layout version; `LOCK` is held with an
/// exclusive `flock` for as long as the store is open (the kernel drops it if the process dies, so
/// a kill -9 never leaves a stale lock) and holds the owner's pid for the error message.
/// An empty or missing directory is initialised; a non-empty directory without the marker, or one
/// whose marker names a newer layout, is refused.
final class DataDirectory: Sendable {
    static let layoutVersion = 1
    static let markerName = "STRATA"
    static let lockName = "LOCK"

    let path: String
    private let lockDescriptor: Int32

    init(path: String) throws {
        self.path = path
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        if fm.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else {
                throw StoreError(.directoryUnusable, "\(path) exists and is not a directory")
            }
        } else {
            do {
                try fm.createDirectory(atPath: path, withIntermediateDirectories: true)
            } catch {
                throw StoreError(.directoryUnusable, "cannot create data directory \(path): \(error.localizedDescription)")
            }
        }
        let marker = path + "/" + DataDirectory.markerName
        if fm.fileExists(atPath: marker) {
            let text: String
            do {
                text = String(decoding: try Data(contentsOf: URL(fileURLWithPath: marker)), as: UTF8.self)
            } catch {
                throw StoreError(.directoryUnusable, "cannot read \(marker): \(error.localizedDescription)")
            }
            let version = text.split(separator: " ").last.flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            guard let version, text.hasPrefix("strata-data-directory") else {
                throw StoreError(.incompatibleDirectory, "\(marker) is damaged; is \(path) a Strata data directory?")
            }
            guard version <= DataDirectory.layoutVersion else {
                throw StoreError(
                    .incompatibleDirectory,
                    "\(path) was written by a newer Strata (layout \(version); this build reads up to \(DataDirectory.layoutVersion))")
            }
        } else {
            let entries: [String]
            do {
                entries = try fm.contentsOfDirectory(atPath: path)
            } catch {
                throw StoreError(.directoryUnusable, "cannot list data directory \(path): \(error.localizedDescription)")
            }
            guard entries.filter({ $0 != DataDirectory.lockName }).isEmpty else {
                throw StoreError(
                    .incompatibleDirectory,
                    "\(path) is not empty and is not a Strata data directory (no \(DataDirectory.markerName) file); refusing to use it")
            }
            do {
                try "strata-data-directory \(DataDirectory.layoutVersion)\n".write(toFile: marker, atomically: true, encoding: .utf8)
            } catch {
                throw StoreError(.directoryUnusable, "cannot write to data directory \(path): \(error.localizedDescription)")
            }
        }
        let lockPath = path + "/" + DataDirectory.lockName
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw StoreError(.directoryUnusable, "cannot open \(lockPath): \(String(cString: strerror(errno)))")
        }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            var buffer = [UInt8](repeating: 0, count: 32)
            let n = pread(fd, &buffer, 32, 0)
            Glibc.close(fd)
            let owner = n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : "?"
            throw StoreError(.directoryInUse, "data directory \(path) is in use by another process (pid \(owner))")
        }
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pwrite(fd, pid, pid.count, 0)
        lockDescriptor = fd
    }

    /// Releases the directory.
    func close() {
        flock(lockDescriptor, LOCK_UN)
        Glibc.close(lockDescriptor)
    }
}
