import StrataStore

/// INFO's instantaneous rates (commands per second, input and output KiB per second), measured
/// between INFO calls: each call that comes at least a second after the last sample takes a new
/// one, so a monitor polling INFO sees the rate over its polling interval.
final class TrafficRates: Sendable {
    /// The rates last computed.
    struct Rates: Sendable {
        var opsPerSecond = 0
        var inputKbps = 0.0
        var outputKbps = 0.0
    }

    private struct Sample {
        var at: Int64
        var totals: ServerCounters.Snapshot
        var rates = Rates()
    }

    /// The previous sample and the rates it gave.
    private let last = Locked<Sample?>(nil)

    /// The rates now, sampling `totals` at `now` (ms since the epoch).
    func rates(totals: ServerCounters.Snapshot, now: Int64) -> Rates {
        last.withLock { last in
            guard let previous = last else {
                last = Sample(at: now, totals: totals)
                return Rates()
            }
            let elapsed = now - previous.at
            guard elapsed >= 1000 else { return previous.rates }
            let seconds = Double(elapsed) / 1000
            let rates = Rates(
                opsPerSecond: Int(Double(totals.commandsProcessed - previous.totals.commandsProcessed) / seconds),
                inputKbps: Double(totals.bytesIn - previous.totals.bytesIn) / 1024 / seconds,
                outputKbps: Double(totals.bytesOut - previous.totals.bytesOut) / 1024 / seconds)
            last = Sample(at: now, totals: totals, rates: rates)
            return rates
        }
    }
}
