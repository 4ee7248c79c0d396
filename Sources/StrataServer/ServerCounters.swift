import Synchronization

/// The node's traffic totals, kept once: INFO reads them directly and `/metrics` exports them
/// (advancing its counters by what changed since the last scrape), so the hot path pays one
/// relaxed atomic add per event.
final class ServerCounters: Sendable {
    let connectionsReceived = Atomic<Int>(0)
    let connectionsRejected = Atomic<Int>(0)
    let commandsProcessed = Atomic<Int>(0)
    let bytesIn = Atomic<Int>(0)
    let bytesOut = Atomic<Int>(0)
    /// INFO's instantaneous rates, sampled from these totals.
    let rates = TrafficRates()
    /// Error replies sent, in all and by their first word (INFO's `errorstats`, at most
    /// `maximumErrorCodes` codes, as Redis keeps).
    let errorReplies = Atomic<Int>(0)
    private let errorCodes = Mutex<[String: Int]>([:])
    static let maximumErrorCodes = 128
    /// What INFO's stats showed at the last CONFIG RESETSTAT: INFO shows the totals less these,
    /// while `/metrics` exports the totals themselves (Prometheus counters never go down).
    let baseline = Mutex(Baseline())

    struct Baseline: Sendable {
        var traffic = Snapshot()
        var errorReplies = 0
        var expired = 0
        var evicted = 0
        var hits = 0
        var misses = 0
    }

    /// Counts one error reply, by the code before its first space (`ERR`, `WRONGTYPE`...).
    func countError<Bytes: Collection<UInt8>>(_ message: Bytes) {
        errorReplies.wrappingAdd(1, ordering: .relaxed)
        let code = String(decoding: message.prefix { $0 != 0x20 && $0 != 0x0D }, as: UTF8.self)
        errorCodes.withLock { codes in
            if codes[code] != nil || codes.count < Self.maximumErrorCodes { codes[code, default: 0] += 1 }
        }
    }

    /// Error counts by code since the last reset, by code.
    var errorCounts: [(code: String, count: Int)] {
        errorCodes.withLock { $0 }.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    func resetErrorCounts() {
        errorCodes.withLock { $0 = [:] }
    }

    /// The totals at one instant.
    struct Snapshot: Sendable, Equatable {
        var connectionsReceived = 0
        var connectionsRejected = 0
        var commandsProcessed = 0
        var bytesIn = 0
        var bytesOut = 0
    }

    func snapshot() -> Snapshot {
        Snapshot(
            connectionsReceived: connectionsReceived.load(ordering: .relaxed),
            connectionsRejected: connectionsRejected.load(ordering: .relaxed),
            commandsProcessed: commandsProcessed.load(ordering: .relaxed),
            bytesIn: bytesIn.load(ordering: .relaxed),
            bytesOut: bytesOut.load(ordering: .relaxed))
    }
}
