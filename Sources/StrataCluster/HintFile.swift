import Foundation
import Logging
import StrataStore

/// Hints on disk: for each peer, the keys whose writes it missed while down, so a coordinator
/// that restarts still hands them off. One append-only file per peer in `<data dir>/hints/`
/// (named by the peer id in hex), each key as `[u32 length][key]`; rewritten after a hand-off
/// with whatever is still owed. A torn last record (crash mid-append) is ignored.
///
/// Appends and rewrites are queued, in the order they are asked for, on a `SerialWriter`:
/// callers hold `ClusterNode.hints`' lock on an event loop, where file I/O must not run. A
/// failed write is logged and counted; the hint itself stays in memory.
struct HintFile: Sendable {
    let directory: String
    private let logger: Logger
    private let writer: SerialWriter

    init(dataDirectory: String, writer: SerialWriter, logger: Logger) {
        directory = dataDirectory + "/hints"
        self.writer = writer
        self.logger = logger
    }

    private func path(_ peer: String) -> String {
        directory + "/" + peer.utf8.map { String(format: "%02x", $0) }.joined()
    }

    /// Every hint on disk, by peer (read once, at start).
    func load() -> [String: Set<[UInt8]>] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch CocoaError.fileReadNoSuchFile {
            return [:]
        } catch {
            logger.error("cannot list the hint files", metadata: ["directory": "\(directory)", "error": "\(error)"])
            return [:]
        }
        var result: [String: Set<[UInt8]>] = [:]
        for name in names {
            var bytes: [UInt8] = []
            var i = name.startIndex
            while i < name.endIndex, let j = name.index(i, offsetBy: 2, limitedBy: name.endIndex),
                let byte = UInt8(name[i..<j], radix: 16)
            {
                bytes.append(byte)
                i = j
            }
            guard let data = FileManager.default.contents(atPath: directory + "/" + name) else {
                logger.error("cannot read a hint file", metadata: ["file": "\(directory)/\(name)"])
                continue
            }
            let keys = Self.decode([UInt8](data))
            if !keys.isEmpty { result[String(decoding: bytes, as: UTF8.self)] = keys }
        }
        return result
    }

    static func decode(_ raw: [UInt8]) -> Set<[UInt8]> {
        var keys = Set<[UInt8]>()
        var offset = 0
        while offset + 4 <= raw.count {
            let length = Int(raw[offset]) | Int(raw[offset + 1]) << 8 | Int(raw[offset + 2]) << 16 | Int(raw[offset + 3]) << 24
            guard offset + 4 + length <= raw.count else { break }
            keys.insert(Array(raw[(offset + 4)..<(offset + 4 + length)]))
            offset += 4 + length
        }
        return keys
    }

    static func encode(_ key: [UInt8]) -> [UInt8] {
        let n = UInt32(key.count)
        return [UInt8(n & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n >> 16 & 0xFF), UInt8(n >> 24)] + key
    }

    /// Queues the append of `key` to `peer`'s file.
    func append(_ key: [UInt8], for peer: String) {
        let (directory, file) = (self.directory, path(peer))
        writer.perform("append a hint", file: file) {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            if !FileManager.default.fileExists(atPath: file) {
                guard FileManager.default.createFile(atPath: file, contents: nil) else { throw CocoaError(.fileWriteUnknown) }
            }
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: file))
            defer { try? handle.close() }  // a failed close after a written append loses nothing
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(HintFile.encode(key)))
        }
    }

    /// Queues the replacement of `peer`'s hints with `keys` (removing the file when none are left).
    func rewrite(_ keys: Set<[UInt8]>, for peer: String) {
        let file = path(peer)
        writer.perform("rewrite hints", file: file) {
            guard !keys.isEmpty else {
                if FileManager.default.fileExists(atPath: file) { try FileManager.default.removeItem(atPath: file) }
                return
            }
            var bytes: [UInt8] = []
            for key in keys { bytes += HintFile.encode(key) }
            try Data(bytes).write(to: URL(fileURLWithPath: file), options: .atomic)
        }
    }
}
