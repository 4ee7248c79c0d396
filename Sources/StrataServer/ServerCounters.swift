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
