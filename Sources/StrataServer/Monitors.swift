import Foundation
import NIOCore
import StrataStore
import Synchronization

/// MONITOR: clients that see every command the node runs for its clients, as Redis prints
/// them (`+<seconds>.<micros> [0 <client address>] "command" "argument"...`).
final class Monitors: Sendable {
    private let sessions = Mutex<[UInt64: ClientSession]>([:])
    /// Whether anyone monitors: every command reads only this.
    private let count = Atomic<Int>(0)

    /// Commands never shown, as Redis keeps its admin commands out of MONITOR.
    static let hidden: Set<String> = [
        "config", "debug", "shutdown", "replicaof", "slaveof", "monitor", "save", "bgsave", "bgrewriteaof", "sync",
        "psync", "module", "acl", "failover", "cluster", "client",
    ]

    var isEmpty: Bool { count.load(ordering: .relaxed) == 0 }

    func add(_ session: ClientSession) {
        let added = sessions.withLock { $0.updateValue(session, forKey: session.id) == nil }
        if added { count.wrappingAdd(1, ordering: .relaxed) }
    }

    func remove(_ session: ClientSession) {
        let removed = sessions.withLock { $0.removeValue(forKey: session.id) != nil }
        if removed { count.wrappingAdd(-1, ordering: .relaxed) }
    }

    /// Shows a command a client sent (its passwords redacted) to every monitoring client.
    func feed(_ arguments: [ByteBuffer], name: String, from session: ClientSession, address: String? = nil) {
        guard !isEmpty, !Self.hidden.contains(name) else { return }
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        var line = "+\(time.tv_sec).\(String(format: "%06ld", time.tv_nsec / 1000)) [0 \(address ?? session.address)]"
        var redactFrom = Int.max
        if name == "auth" { redactFrom = 1 }
        for (i, argument) in arguments.enumerated() {
            line += " "
            if i >= redactFrom {
                line += "\"(redacted)\""
                continue
            }
            line += Self.quoted(argument.readableBytesView)
            if name == "hello", String(buffer: argument).uppercased() == "AUTH" { redactFrom = i + 1 }
        }
        line += "\r\n"
        let message = ByteBuffer(string: line)
        let watchers = sessions.withLock { Array($0.values) }
        for watcher in watchers where watcher.id != session.id { watcher.push(message) }
    }

    /// Redis' `sdscatrepr`: in double quotes, with \\ \" \n \r \t \a \b escaped and other
    /// unprintable bytes as \xHH.
    static func quoted<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> String {
        var out = "\""
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "\\"): out += "\\\\"
            case UInt8(ascii: "\""): out += "\\\""
            case 0x0A: out += "\\n"
            case 0x0D: out += "\\r"
            case 0x09: out += "\\t"
            case 0x07: out += "\\a"
            case 0x08: out += "\\b"
            case 0x20...0x7E: out.unicodeScalars.append(Unicode.Scalar(byte))
            default: out += String(format: "\\x%02x", byte)
            }
        }
        return out + "\""
    }
}
