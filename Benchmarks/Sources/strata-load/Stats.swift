// Per-event-loop statistics: every field is touched only on its loop's thread (no locks); the
// loops' snapshots are merged once, at the end of a phase.
import Histogram

/// Latency histograms hold nanoseconds up to an hour (3 significant digits overall, 2 per second).
func makeHistogram(digits: SignificantDigits = .three) -> Histogram<UInt64> {
    Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000_000, numberOfSignificantValueDigits: digits)
}

let histogramMax: UInt64 = 3_600_000_000_000

struct Counters: Sendable {
    var replies: UInt64 = 0
    var gets: UInt64 = 0
    var hits: UInt64 = 0
    var misses: UInt64 = 0
    var sets: UInt64 = 0
    var errors: UInt64 = 0
    var wrongLength: UInt64 = 0

    mutating func add(_ o: Counters) {
        replies &+= o.replies; gets &+= o.gets; hits &+= o.hits; misses &+= o.misses
        sets &+= o.sets; errors &+= o.errors; wrongLength &+= o.wrongLength
    }
}

struct IntervalSample: Sendable {
    var counters = Counters()
    var connectFailures: UInt64 = 0
    var disconnects: UInt64 = 0
    var histogram: Histogram<UInt64>? = nil
}

/// What one loop measured in one phase.
struct LoopSnapshot: Sendable {
    var counters = Counters()
    var histogram = makeHistogram()
    /// The same latencies split by request kind.
    var getHistogram = makeHistogram()
    var setHistogram = makeHistogram()
    var intervals: [IntervalSample] = []
    var connectFailures: UInt64 = 0
    var connects: UInt64 = 0
    var disconnects: UInt64 = 0
    var lostInFlight: UInt64 = 0
    var timeouts: UInt64 = 0
    var protocolErrors: UInt64 = 0
    var firstReplyNanos: UInt64 = .max
    var firstOkReplyNanos: UInt64 = .max
    var lastReplyNanos: UInt64 = 0
    var firstError: String? = nil
    var firstConnectError: String? = nil
    /// --hit-check: bit i set when a GET of key i returned nothing.
    var missedKeys: [UInt64] = []
}

final class Stats {
    var s = LoopSnapshot()
    let phaseStart: UInt64
    let intervalNanos: UInt64  // 0: no per-interval samples
    let expectedLength: Int
    let hitCheck: Bool

    init(phaseStart: UInt64, intervalNanos: UInt64, expectedLength: Int, hitCheck: Bool, keys: UInt64) {
        self.phaseStart = phaseStart
        self.intervalNanos = intervalNanos
        self.expectedLength = expectedLength
        self.hitCheck = hitCheck
        if hitCheck { s.missedKeys = [UInt64](repeating: 0, count: Int((keys + 63) / 64)) }
    }

    @inline(__always)
    private func intervalIndex(_ now: UInt64) -> Int {
        Int((now &- phaseStart) / intervalNanos)
    }

    @inline(__always)
    private func withInterval(_ now: UInt64, _ body: (inout IntervalSample) -> Void) {
        guard intervalNanos > 0, now >= phaseStart else { return }
        let i = intervalIndex(now)
        if i >= s.intervals.count {
            s.intervals.append(contentsOf: repeatElement(IntervalSample(), count: i - s.intervals.count + 1))
        }
        body(&s.intervals[i])
    }

    /// One reply. `isGet` says what the request was.
    @inline(__always)
    func record(latency: UInt64, now: UInt64, isGet: Bool, key: UInt64, reply: Reply) {
        let lat = min(latency, histogramMax)
        s.histogram.record(lat)
        if isGet { s.getHistogram.record(lat) } else { s.setHistogram.record(lat) }
        if now < s.firstReplyNanos { s.firstReplyNanos = now }
        s.lastReplyNanos = now
        var c = Counters()
        c.replies = 1
        if reply.isError {
            c.errors = 1
            if isGet { c.gets = 1 }  // a GET answered with an error (e.g. Redis' -LOADING) got no value
        } else if now < s.firstOkReplyNanos {
            s.firstOkReplyNanos = now
        }
        switch reply {
        case .error:
            break
        case .hit(let length):
            if isGet {
                c.gets = 1
                c.hits = 1
                if hitCheck && length != expectedLength { c.wrongLength = 1 }
            } else {
                c.sets = 1
            }
        case .miss:
            if isGet {
                c.gets = 1
                c.misses = 1
                if hitCheck {
                    let k = Int(key)
                    s.missedKeys[k >> 6] |= (1 << UInt64(k & 63))
                }
            } else {
                c.sets = 1
            }
        case .ok:
            if isGet { c.gets = 1 } else { c.sets = 1 }
        }
        s.counters.add(c)
        withInterval(now) { iv in
            iv.counters.add(c)
            if iv.histogram == nil { iv.histogram = makeHistogram(digits: .two) }
            iv.histogram!.record(lat)
        }
    }

    func connectFailed(_ now: UInt64, _ error: any Error) {
        s.connectFailures += 1
        if s.firstConnectError == nil { s.firstConnectError = "\(error)" }
        withInterval(now) { $0.connectFailures += 1 }
    }

    func disconnected(_ now: UInt64, lost: Int) {
        s.disconnects += 1
        s.lostInFlight += UInt64(lost)
        withInterval(now) { $0.disconnects += 1 }
    }
}

extension LoopSnapshot {
    mutating func merge(_ o: LoopSnapshot) {
        counters.add(o.counters)
        histogram.add(o.histogram)
        getHistogram.add(o.getHistogram)
        setHistogram.add(o.setHistogram)
        if o.intervals.count > intervals.count {
            intervals.append(contentsOf: repeatElement(IntervalSample(), count: o.intervals.count - intervals.count))
        }
        for (i, iv) in o.intervals.enumerated() {
            intervals[i].counters.add(iv.counters)
            intervals[i].connectFailures += iv.connectFailures
            intervals[i].disconnects += iv.disconnects
            if let h = iv.histogram {
                if intervals[i].histogram == nil { intervals[i].histogram = makeHistogram(digits: .two) }
                intervals[i].histogram!.add(h)
            }
        }
        connectFailures += o.connectFailures
        connects += o.connects
        disconnects += o.disconnects
        lostInFlight += o.lostInFlight
        timeouts += o.timeouts
        protocolErrors += o.protocolErrors
        firstReplyNanos = min(firstReplyNanos, o.firstReplyNanos)
        firstOkReplyNanos = min(firstOkReplyNanos, o.firstOkReplyNanos)
        lastReplyNanos = max(lastReplyNanos, o.lastReplyNanos)
        if firstError == nil { firstError = o.firstError }
        if firstConnectError == nil { firstConnectError = o.firstConnectError }
        if missedKeys.isEmpty {
            missedKeys = o.missedKeys
        } else if !o.missedKeys.isEmpty {
            for i in 0..<missedKeys.count { missedKeys[i] |= o.missedKeys[i] }
        }
    }
}
