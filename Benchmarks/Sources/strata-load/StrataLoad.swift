// strata-load: a load generator for Redis-protocol (and memcached) servers. See `strata-load --help`.
import ArgumentParser
import Foundation
import Histogram
import NIOCore
import NIOPosix

@main
struct StrataLoad: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "strata-load",
        abstract: "GET/SET load over many pipelined connections; ops/s, hit ratio and HDR latency percentiles.",
        discussion: """
        Keys are <prefix><index as 10 digits> (key:0000000042) for index in [0, --keys). Each \
        connection keeps --pipeline requests in flight (closed loop) and records each request's \
        latency, send to reply, in an HDR histogram per event loop; the loops' histograms are \
        merged at the end. --fill first writes every key once, in order; a load phase follows \
        when --duration or --requests is given (or neither --fill nor a count: 10 s).

        Examples:
          strata-load --port 7379 --fill --keys 100000 --value-size 1024
          strata-load --port 7379 --keys 100000 --duration 10 --read-ratio 0.9 --distribution zipf
          strata-load --protocol memcached --port 11211 --fill --keys 100000 --duration 10 --json
          strata-load --servers 127.0.0.1:7379,127.0.0.1:7380 --until-ready --interval 1 --duration 10 --json
        """)

    @Option(help: "Server host (with --port).") var host = "127.0.0.1"
    @Option(help: "Server port.") var port = 6379
    @Option(help: "Servers host:port,host:port,... (connections are spread round-robin); overrides --host/--port.")
    var servers: String?
    @Option(help: "Wire protocol: resp or memcached.") var `protocol` = "resp"
    @Option(name: [.short, .long], help: "Client connections.") var connections = 50
    @Option(name: [.customShort("P"), .long], help: "Requests in flight per connection.") var pipeline = 1
    @Option(help: "Event loop threads of the load generator.") var threads = 1
    @Option(help: "Key space: keys [0, keys).") var keys: UInt64 = 100_000
    @Option(help: "Key prefix.") var keyPrefix = "key:"
    @Option(help: "Key choice: zipf or uniform.") var distribution = "zipf"
    @Option(help: "Zipf skew (theta), 0 < s < 1.") var zipfSkew = 0.99
    @Option(help: "Fraction of requests that are GETs (the rest are SETs).") var readRatio = 0.9
    @Option(name: [.short, .long], help: "Value size in bytes for SETs.") var valueSize = 100
    @Option(help: "What a write sends: set, multi3 (MULTI, three SETs of hash-tagged keys, EXEC) or evalsha:SHA (EVALSHA SHA 1 key value).")
    var writeAs = "set"
    @Option(help: "Load phase length in seconds.") var duration: Double?
    @Option(name: [.short, .long], help: "Load phase request count (instead of --duration).") var requests: UInt64?
    @Flag(name: [.long, .customLong("warmup")], help: "First write every key once, in order (fill phase).")
    var fill = false
    @Option(help: "Requests in flight per connection during the fill.") var fillPipeline = 32
    @Option(help: "Per-interval samples (seconds; e.g. 1): ops, hit ratio, p99 of each interval.")
    var interval: Double?
    @Flag(help: "Every key was written (by a fill): count each GET returning nothing as a lost key, report distinct lost keys and check value lengths.")
    var hitCheck = false
    @Option(help: "Keep retrying to connect for this many seconds (0: one attempt).") var connectTimeout: Double?
    @Flag(help: "Wait for the server: retry connecting (for --connect-timeout, default 60 s) and time the first reply.")
    var untilReady = false
    @Option(help: "Close a connection whose requests got no reply for this many seconds (then reconnect).")
    var replyTimeout = 10.0
    @Option(help: "Random seed.") var seed: UInt64 = 42
    @Flag(help: "Print one JSON object (for scripts) instead of text.") var json = false

    mutating func validate() throws {
        guard WireProtocol(rawValue: self.protocol) != nil else { throw ValidationError("--protocol is resp or memcached") }
        guard Distribution(rawValue: distribution) != nil else { throw ValidationError("--distribution is zipf or uniform") }
        guard connections >= 1, pipeline >= 1, fillPipeline >= 1, threads >= 1 else {
            throw ValidationError("--connections, --pipeline, --fill-pipeline and --threads must be at least 1")
        }
        guard keys >= 1, keys <= 4_000_000_000 else { throw ValidationError("--keys must be in 1...4,000,000,000") }
        guard zipfSkew > 0, zipfSkew < 1 else { throw ValidationError("--zipf-skew must be in (0, 1)") }
        guard readRatio >= 0, readRatio <= 1 else { throw ValidationError("--read-ratio must be in [0, 1]") }
        guard valueSize >= 0 else { throw ValidationError("--value-size must be >= 0") }
        if let duration, duration <= 0 { throw ValidationError("--duration must be positive") }
        if duration != nil && requests != nil { throw ValidationError("give --duration or --requests, not both") }
        if let interval, interval <= 0 { throw ValidationError("--interval must be positive") }
    }

    func targets() throws -> [SocketAddress] {
        let list: [(String, Int)]
        if let servers {
            list = try servers.split(separator: ",").map { item in
                guard let colon = item.lastIndex(of: ":"), let p = Int(item[item.index(after: colon)...]) else {
                    throw ValidationError("bad server \(item): expected host:port")
                }
                return (String(item[..<colon]), p)
            }
        } else {
            list = [(host, port)]
        }
        guard !list.isEmpty else { throw ValidationError("no servers") }
        return try list.map { try SocketAddress.makeAddressResolvingHost($0.0, port: $0.1) }
    }

    func run() throws {
        let proto = WireProtocol(rawValue: self.protocol)!
        let dist = Distribution(rawValue: distribution)!
        let targets = try targets()
        let connectTimeoutSeconds = connectTimeout ?? (untilReady ? 60 : 0)
        let form: RequestEncoder.WriteForm
        switch writeAs {
        case "set": form = .set
        case "multi3": form = .multi3
        case let other where other.hasPrefix("evalsha:"): form = .evalsha(String(other.dropFirst(8)))
        default: throw ValidationError("--write-as: set, multi3 or evalsha:SHA")
        }
        let encoder = RequestEncoder(proto: proto, keyPrefix: keyPrefix, valueSize: valueSize, form: form)
        let runLoad = duration != nil || requests != nil || !fill
        let loadDuration = duration ?? (requests == nil ? 10 : nil)

        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        defer { try? group.syncShutdownGracefully() }

        var base = PhaseConfig(
            phase: .fill, proto: proto, targets: targets, connections: connections, pipeline: fillPipeline,
            keys: keys, chooser: KeyChooser(keys: keys, distribution: .uniform, skew: zipfSkew), readRatio: 0,
            encoder: encoder, durationNanos: nil, requests: nil, intervalNanos: 0, hitCheck: false,
            connectTimeoutNanos: UInt64(connectTimeoutSeconds * 1e9), replyTimeoutNanos: UInt64(replyTimeout * 1e9),
            drainNanos: 2_000_000_000, seed: seed)

        var fillReport: PhaseReport?
        if fill {
            let result = runPhase(group: group, config: base)
            fillReport = PhaseReport(result, config: base, hitCheck: false)
            if !json { printText(fillReport!, title: "fill") }
        }
        var loadReport: PhaseReport?
        if runLoad {
            base.phase = .mixed
            base.pipeline = pipeline
            base.chooser = KeyChooser(keys: keys, distribution: dist, skew: zipfSkew)
            base.readRatio = readRatio
            base.durationNanos = loadDuration.map { UInt64($0 * 1e9) }
            base.requests = requests
            base.intervalNanos = interval.map { UInt64($0 * 1e9) } ?? 0
            base.hitCheck = hitCheck
            base.seed = seed &+ 1
            let result = runPhase(group: group, config: base)
            loadReport = PhaseReport(result, config: base, hitCheck: hitCheck)
            if !json { printText(loadReport!, title: "load") }
        }

        if json {
            let out = Output(
                protocol: self.protocol,
                servers: targets.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" },
                connections: connections, pipeline: pipeline, fill_pipeline: fillPipeline, threads: threads,
                keys: keys, distribution: distribution, zipf_skew: zipfSkew, read_ratio: readRatio,
                value_size: valueSize, fill: fillReport, load: loadReport)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let data = try encoder.encode(out)
            FileHandle.standardOutput.write(data)
            FileHandle.standardOutput.write(Data("\n".utf8))
        }
        let phases = [fillReport, loadReport].compactMap { $0 }
        if let failed = phases.first(where: { $0.replies == 0 }) {
            FileHandle.standardError.write(Data(
                "strata-load: no replies (\(failed.first_connection_error ?? failed.first_error ?? "no error seen"))\n".utf8))
            throw ExitCode(2)
        }
        if let f = fillReport, f.replies - f.errors < keys {
            FileHandle.standardError.write(Data(
                "strata-load: fill incomplete: \(f.replies - f.errors) of \(keys) keys written (\(f.first_error ?? f.first_connection_error ?? "no error seen"))\n".utf8))
            throw ExitCode(3)
        }
    }

    struct PhaseResult {
        var snapshot: LoopSnapshot
        var startUnix: Double
        var startNanos: UInt64
        var elapsed: Double
        var connectionsRequested: Int
    }

    func runPhase(group: MultiThreadedEventLoopGroup, config: PhaseConfig) -> PhaseResult {
        let loops = Array(group.makeIterator())
        let startUnix = unixNow()
        let start = nowNanos()
        let states = loops.map { LoopState(loop: $0, config: config, start: start) }
        let l = UInt64(states.count)
        for (i, st) in states.enumerated() {
            st.fillNext = config.keys * UInt64(i) / l
            st.fillEnd = config.keys * UInt64(i + 1) / l
        }
        var futures: [EventLoopFuture<Void>] = []
        for c in 0..<config.connections {
            let st = states[c % states.count]
            var quota = UInt64.max
            if let requests = config.requests {
                let n = UInt64(config.connections)
                quota = requests / n + (UInt64(c) < requests % n ? 1 : 0)
            }
            let slot = Slot(state: st, target: config.targets[c % config.targets.count], index: c, remaining: quota)
            st.slots.append(slot)
            futures.append(slot.done.futureResult)
        }
        if untilReady {
            // a script starting the server right after this line gets a load that is already knocking
            FileHandle.standardError.write(Data("strata-load: \(config.phase == .fill ? "fill" : "load") phase started, connecting\n".utf8))
        }
        for st in states { st.loop.execute { st.begin() } }
        try! EventLoopFuture.andAllComplete(futures, on: loops[0]).wait()
        let end = nowNanos()
        var merged = LoopSnapshot()
        for st in states {
            let snap = try! st.loop.submit { () -> LoopSnapshot in
                st.watchdog?.cancel()
                st.watchdog = nil
                return st.stats.s
            }.wait()
            merged.merge(snap)
        }
        var elapsed = Double(end - start) / 1e9
        if let d = config.durationNanos, end >= start + d { elapsed = Double(d) / 1e9 }
        return PhaseResult(snapshot: merged, startUnix: startUnix, startNanos: start, elapsed: elapsed, connectionsRequested: config.connections)
    }

    func printText(_ r: PhaseReport, title: String) {
        func n(_ v: UInt64) -> String { v.formatted(.number) }
        func ms(_ us: Double) -> String { String(format: "%.3f", us / 1000) }
        var lines: [String] = []
        lines.append("\(title): \(String(format: "%.2f", r.elapsed_s)) s, \(n(r.replies)) replies, \(n(UInt64(r.ops_per_sec.rounded()))) ops/s")
        if r.gets > 0 {
            var s = "  GETs \(n(r.gets)) (\(String(format: "%.1f", 100 * Double(r.gets) / Double(max(r.replies, 1))))%), hits \(n(r.hits)), misses \(n(r.misses)), hit ratio \(String(format: "%.4f", r.hit_ratio ?? 0))"
            if let lost = r.distinct_lost_keys { s += ", distinct keys lost \(n(lost)), wrong lengths \(n(r.wrong_length ?? 0))" }
            lines.append(s)
        }
        lines.append("  SETs \(n(r.sets)), errors \(n(r.errors))\(r.first_error.map { " (first: \($0))" } ?? "")")
        let l = r.latency_us
        lines.append("  latency ms: p50 \(ms(l.p50)) p90 \(ms(l.p90)) p99 \(ms(l.p99)) p99.9 \(ms(l.p999)) max \(ms(l.max)) mean \(ms(l.mean))")
        for (name, k) in [("GET", r.get_latency_us), ("SET", r.set_latency_us)] where k.max > 0 {
            lines.append("    \(name) ms: p50 \(ms(k.p50)) p99 \(ms(k.p99)) p99.9 \(ms(k.p999)) max \(ms(k.max))")
        }
        lines.append("  connections: \(r.connects) connects, \(r.connect_failures) failed connects, \(r.disconnects) disconnects, \(r.lost_in_flight) lost in flight, \(r.timeouts) timeouts, \(r.protocol_errors) protocol errors\(r.first_connection_error.map { " (first: \($0))" } ?? "")")
        if let f = r.first_reply_s {
            lines.append("  first reply after \(String(format: "%.3f", f)) s, first non-error reply after \(r.first_ok_reply_s.map { String(format: "%.3f", $0) } ?? "-") s")
        }
        if let ivs = r.intervals {
            lines.append("  interval     ops/s  hit ratio   p50 ms   p99 ms   errors  conn.fail")
            for iv in ivs {
                lines.append(String(format: "  %6.1f %11.0f %10@ %8.3f %8.3f %8llu %10llu", iv.t, iv.ops_per_sec,
                                    iv.hit_ratio.map { String(format: "%.4f", $0) } ?? "-",
                                    iv.p50_us / 1000, iv.p99_us / 1000, iv.errors, iv.connect_failures))
            }
        }
        print(lines.joined(separator: "\n"))
    }
}

struct Latency: Codable {
    var p50, p90, p99, p999, p9999, max, mean: Double

    init(_ h: Histogram<UInt64>) {
        func us(_ p: Double) -> Double { h.totalCount == 0 ? 0 : Double(h.valueAtPercentile(p)) / 1000 }
        p50 = us(50); p90 = us(90); p99 = us(99); p999 = us(99.9); p9999 = us(99.99)
        max = h.totalCount == 0 ? 0 : Double(h.max) / 1000
        mean = h.totalCount == 0 ? 0 : h.mean / 1000
    }
}

struct IntervalReport: Codable {
    var t: Double           // interval start, seconds since the phase started
    var ops: UInt64
    var ops_per_sec: Double
    var gets: UInt64
    var hits: UInt64
    var hit_ratio: Double?
    var errors: UInt64
    var connect_failures: UInt64
    var disconnects: UInt64
    var p50_us: Double
    var p99_us: Double
    var max_us: Double
}

struct PhaseReport: Codable {
    var start_unix: Double
    var elapsed_s: Double
    var replies: UInt64
    var ops_per_sec: Double
    var gets: UInt64
    var hits: UInt64
    var misses: UInt64
    var hit_ratio: Double?
    var sets: UInt64
    var errors: UInt64
    var first_error: String?
    var distinct_lost_keys: UInt64?
    var wrong_length: UInt64?
    var latency_us: Latency
    var get_latency_us: Latency
    var set_latency_us: Latency
    var connects: UInt64
    var connect_failures: UInt64
    var disconnects: UInt64
    var lost_in_flight: UInt64
    var timeouts: UInt64
    var protocol_errors: UInt64
    var first_connection_error: String?
    var first_reply_s: Double?
    var first_reply_unix: Double?
    var first_ok_reply_s: Double?
    var first_ok_reply_unix: Double?
    var intervals: [IntervalReport]?

    init(_ r: StrataLoad.PhaseResult, config: PhaseConfig, hitCheck: Bool) {
        let s = r.snapshot
        start_unix = r.startUnix
        elapsed_s = r.elapsed
        replies = s.counters.replies
        ops_per_sec = r.elapsed > 0 ? Double(s.counters.replies) / r.elapsed : 0
        gets = s.counters.gets
        hits = s.counters.hits
        misses = s.counters.misses
        hit_ratio = s.counters.gets > 0 ? Double(s.counters.hits) / Double(s.counters.gets) : nil
        sets = s.counters.sets
        errors = s.counters.errors
        first_error = s.firstError
        if hitCheck {
            distinct_lost_keys = s.missedKeys.reduce(0) { $0 + UInt64($1.nonzeroBitCount) }
            wrong_length = s.counters.wrongLength
        }
        latency_us = Latency(s.histogram)
        get_latency_us = Latency(s.getHistogram)
        set_latency_us = Latency(s.setHistogram)
        connects = s.connects
        connect_failures = s.connectFailures
        disconnects = s.disconnects
        lost_in_flight = s.lostInFlight
        timeouts = s.timeouts
        protocol_errors = s.protocolErrors
        first_connection_error = s.firstConnectError
        // firstReplyNanos and the phase start share the monotonic clock
        if s.firstReplyNanos != .max {
            let f = Double(s.firstReplyNanos &- r.startNanos) / 1e9
            first_reply_s = f
            first_reply_unix = r.startUnix + f
        }
        if s.firstOkReplyNanos != .max {
            let f = Double(s.firstOkReplyNanos &- r.startNanos) / 1e9
            first_ok_reply_s = f
            first_ok_reply_unix = r.startUnix + f
        }
        if config.intervalNanos > 0 {
            let width = Double(config.intervalNanos) / 1e9
            var samples = s.intervals
            let covered = Int((r.elapsed / width).rounded(.up))
            if samples.count < covered {
                samples.append(contentsOf: repeatElement(IntervalSample(), count: covered - samples.count))
            } else if config.durationNanos != nil && samples.count > covered {
                samples.removeLast(samples.count - covered)  // replies drained after the deadline
            }
            intervals = samples.enumerated().map { i, iv in
                let h = iv.histogram
                func us(_ p: Double) -> Double { (h?.totalCount ?? 0) == 0 ? 0 : Double(h!.valueAtPercentile(p)) / 1000 }
                return IntervalReport(
                    t: Double(i) * width, ops: iv.counters.replies, ops_per_sec: Double(iv.counters.replies) / width,
                    gets: iv.counters.gets, hits: iv.counters.hits,
                    hit_ratio: iv.counters.gets > 0 ? Double(iv.counters.hits) / Double(iv.counters.gets) : nil,
                    errors: iv.counters.errors, connect_failures: iv.connectFailures, disconnects: iv.disconnects,
                    p50_us: us(50), p99_us: us(99), max_us: (h?.totalCount ?? 0) == 0 ? 0 : Double(h!.max) / 1000)
            }
        }
    }
}

struct Output: Codable {
    var `protocol`: String
    var servers: [String]
    var connections: Int
    var pipeline: Int
    var fill_pipeline: Int
    var threads: Int
    var keys: UInt64
    var distribution: String
    var zipf_skew: Double
    var read_ratio: Double
    var value_size: Int
    var fill: PhaseReport?
    var load: PhaseReport?
}
