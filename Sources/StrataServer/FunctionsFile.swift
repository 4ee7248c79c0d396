import Foundation
import Logging
import StrataScript

/// The node's function libraries on disk: `functions` in the data directory, FUNCTION DUMP's
/// payload, replaced atomically (temp file, fsync, rename, directory fsync) on every change.
enum FunctionsFile {
    static func path(_ directory: String) -> String { directory + "/functions" }

    /// A script engine with the libraries saved in `directory` (none if there is no file; a
    /// damaged file is logged and left for inspection).
    static func engine(directory: String, logger: Logger) -> ScriptEngine {
        let engine = ScriptEngine()
        guard let data = FileManager.default.contents(atPath: path(directory)) else { return engine }
        do {
            try engine.install(try FunctionDump.decode(Array(data)), policy: .flush)
        } catch {
            logger.error("could not load the function libraries", metadata: ["file": "\(path(directory))", "error": "\(error.message)"])
        }
        return engine
    }

    static func save(_ engine: ScriptEngine, directory: String) throws {
        let payload = FunctionDump.encode(engine.libraries.map(\.code))
        let temporary = path(directory) + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        let written = payload.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd)
        close(fd)
        guard written == payload.count, synced == 0, rename(temporary, path(directory)) == 0 else {
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
        }
        let directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryFD >= 0 {
            fsync(directoryFD)
            close(directoryFD)
        }
    }
}
