import DequeModule
import Synchronization

/// Commands that ran longer than `slowlog-log-slower-than`, newest first, at most
/// `slowlog-max-len` of them (Redis' SLOWLOG).
final class SlowLog: Sendable {
    struct Entry: Sendable {
        let id: Int
        /// Unix time in seconds when the command was logged.
        let timestamp: Int64
        let microseconds: Int64
        let arguments: [[UInt8]]
        let clientAddress: String
        let clientName: String
    }

    private struct State {
        var entries = Deque<Entry>()
        var nextID = 0
    }

    private let state = Mutex(State())
    /// `slowlog-log-slower-than` in microseconds: negative logs nothing, 0 logs every command.
    private let threshold = Atomic<Int>(10_000)
    /// `slowlog-max-len`.
    private let capacity = Atomic<Int>(128)

    /// Redis' limits on what an entry keeps of a command.
    static let maximumArguments = 32
    static let maximumArgumentBytes = 128

    var thresholdMicroseconds: Int {
        get { threshold.load(ordering: .relaxed) }
        set { threshold.store(newValue, ordering: .relaxed) }
    }

    var maximumLength: Int {
        get { capacity.load(ordering: .relaxed) }
        set {
            capacity.store(newValue, ordering: .relaxed)
            state.withLock { s in
                while s.entries.count > max(0, newValue) { s.entries.removeLast() }
            }
        }
    }

    /// Whether a command that took `microseconds` belongs in the log (cheap: read on every command).
    func isSlow(_ microseconds: Int64) -> Bool {
        let limit = threshold.load(ordering: .relaxed)
        return limit >= 0 && microseconds >= Int64(limit)
    }

    /// Logs a command, trimmed as Redis trims it: 32 arguments at most (the last one saying how
    /// many more there were) and 128 bytes of each (with how many more bytes).
    func record(_ arguments: [[UInt8]], microseconds: Int64, clientAddress: String, clientName: String, now: Int64) {
        var kept: [[UInt8]] = []
        for (i, argument) in arguments.enumerated() {
            if i == Self.maximumArguments - 1 && arguments.count > Self.maximumArguments {
                kept.append(Array("... (\(arguments.count - i) more arguments)".utf8))
                break
            }
            if argument.count > Self.maximumArgumentBytes {
                kept.append(Array(argument.prefix(Self.maximumArgumentBytes)) + Array("... (\(argument.count - Self.maximumArgumentBytes) more bytes)".utf8))
            } else {
                kept.append(argument)
            }
        }
        let limit = capacity.load(ordering: .relaxed)
        state.withLock { s in
            s.entries.prepend(Entry(
                id: s.nextID, timestamp: now / 1000, microseconds: microseconds, arguments: kept,
                clientAddress: clientAddress, clientName: clientName))
            s.nextID += 1
            while s.entries.count > max(0, limit) { s.entries.removeLast() }
        }
    }

    /// The newest `count` entries (nil: all).
    func newest(_ count: Int?) -> [Entry] {
        state.withLock { s in Array(s.entries.prefix(count ?? s.entries.count)) }
    }

    var count: Int { state.withLock { $0.entries.count } }

    func reset() {
        state.withLock { $0.entries.removeAll() }
    }
}
