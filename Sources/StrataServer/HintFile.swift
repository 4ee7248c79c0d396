import Foundation

/// Hints on disk: for each peer, the keys whose writes it missed while down, so a coordinator
/// that restarts still hands them off. One append-only file per peer in `<data dir>/hints/`
/// (named by the peer id in hex), each key as `[u32 length][key]`; rewritten after a hand-off
/// with whatever is still owed. A torn last record (crash mid-append) is ignored.
///
/// Used only under `Server.hints`' lock.
struct HintFile: Sendable {
    let directory: String

    init(dataDirectory: String) {
        directory = dataDirectory + "/hints"
    }

    private func path(_ peer: String) -> String {
        directory + "/" + peer.utf8.map { String(format: "%02x", $0) }.joined()
    }

    /// Every hint on disk, by peer.
    func load() -> [String: Set<[UInt8]>] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [:] }
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
            guard let data = FileManager.default.contents(atPath: directory + "/" + name) else { continue }
            let raw = [UInt8](data)
            var keys = Set<[UInt8]>()
            var offset = 0
            while offset + 4 <= raw.count {
                let length = Int(raw[offset]) | Int(raw[offset + 1]) << 8 | Int(raw[offset + 2]) << 16 | Int(raw[offset + 3]) << 24
                guard offset + 4 + length <= raw.count else { break }
                keys.insert(Array(raw[(offset + 4)..<(offset + 4 + length)]))
                offset += 4 + length
            }
            if !keys.isEmpty { result[String(decoding: bytes, as: UTF8.self)] = keys }
        }
        return result
    }

    private static func encode(_ key: [UInt8]) -> [UInt8] {
        let n = UInt32(key.count)
        return [UInt8(n & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n >> 16 & 0xFF), UInt8(n >> 24)] + key
    }

    func append(_ key: [UInt8], for peer: String) {
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let file = path(peer)
        if !FileManager.default.fileExists(atPath: file) {
            _ = FileManager.default.createFile(atPath: file, contents: nil)
        }
        guard let handle = FileHandle(forWritingAtPath: file) else { return }
        defer { try? handle.close() }
        _ = try? handle.seekToEnd()
        try? handle.write(contentsOf: Data(HintFile.encode(key)))
    }

    /// Replaces `peer`'s hints with `keys` (removing the file when none are left).
    func rewrite(_ keys: Set<[UInt8]>, for peer: String) {
        let file = path(peer)
        guard !keys.isEmpty else {
            try? FileManager.default.removeItem(atPath: file)
            return
        }
        var bytes: [UInt8] = []
        for key in keys { bytes += HintFile.encode(key) }
        try? Data(bytes).write(to: URL(fileURLWithPath: file), options: .atomic)
    }
}
