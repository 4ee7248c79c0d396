import CoreMetrics
import Foundation
import Prometheus
import StrataCluster
import StrataStore

/// The latency buckets of every duration histogram, 25 µs to 2.5 s.
let latencyBuckets: [Duration] = [
    .microseconds(25), .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500),
    .milliseconds(1), .milliseconds(2) + .microseconds(500), .milliseconds(5), .milliseconds(10),
    .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
    .seconds(1), .milliseconds(2500),
]

/// A metric name with its help text (the names follow Prometheus conventions: `strata_` prefix,
/// base units, `_total` on counters).
func descriptor(_ name: String, _ help: String) -> MetricNameDescriptor {
    MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
}

/// Per-command metrics, made once when the command table is built.
struct CommandMetrics: Sendable {
    let calls: Prometheus.Counter
    let errors: Prometheus.Counter
    let duration: DurationHistogram
}

/// Every metric a node exports, in one Prometheus registry rendered at `/metrics`.
///
/// Request metrics are updated as commands run. The store's own counters are read when
/// `/metrics` is scraped (`refresh`), so the hot path pays nothing for them: gauges are set, and
/// counters advance by what changed since the last scrape.
public final class ServerMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry

    let connectedClients: Prometheus.Gauge
    let blockedClients: Prometheus.Gauge
    /// Pub/sub: channels and patterns with subscribers, messages delivered, and subscribers
    /// closed for not reading (`client-output-buffer-limit pubsub`).
    let pubsubChannels: Prometheus.Gauge
    let pubsubPatterns: Prometheus.Gauge
    let pubsubMessages: Prometheus.Counter
    let pubsubDisconnections: Prometheus.Counter
    let connections: Prometheus.Counter
    let rejectedConnections: Prometheus.Counter
    let bytesIn: Prometheus.Counter
    let bytesOut: Prometheus.Counter
    let protocolErrors: Prometheus.Counter
    let fsyncDuration: DurationHistogram
    let forwarded: Prometheus.Counter
    /// What cluster work advances (replication, repair, hand-off, rebalancing).
    public let cluster: ClusterMetrics
    let hintsPending: Prometheus.Gauge
    private let clusterFileErrors: Prometheus.Counter
    private let clusterFileErrorsSeen = Locked(0)
    private let replicationInFlight: Prometheus.Gauge
    private let ringEpoch: Prometheus.Gauge
    private let membersByState: [Membership.Member.State: Prometheus.Gauge]
    /// `strata_peer_up` gauges by peer, so that a peer that leaves the cluster is dropped.
    private let peerUp = Locked<[NodeID: Prometheus.Gauge]>([:])
    private let unknownCommand: CommandMetrics
    private let residentMemory: Prometheus.Gauge
    private let cpuSeconds: Prometheus.Counter
    private let cpuSecondsSeen = Locked(0.0)
    private let openFiles: Prometheus.Gauge
    private let memory: ProcessMemoryMetrics
    private let startTime: Prometheus.Gauge
    private let storeMetrics: StoreMetrics
    /// The server's totals as last exported.
    private let exported = Locked(ServerCounters.Snapshot())

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        connectedClients = registry.makeGauge(descriptor: descriptor("strata_connected_clients", "Client connections open now."))
        blockedClients = registry.makeGauge(
            descriptor: descriptor("strata_blocked_clients", "Clients waiting in a blocking pop (BLPOP, BZPOPMIN...) on this node."))
        pubsubChannels = registry.makeGauge(
            descriptor: descriptor("strata_pubsub_channels", "Pub/sub channels and shard channels with subscribers on this node."))
        pubsubPatterns = registry.makeGauge(
            descriptor: descriptor("strata_pubsub_patterns", "Pub/sub patterns with subscribers on this node."))
        pubsubMessages = registry.makeCounter(
            descriptor: descriptor("strata_pubsub_messages_total", "Pub/sub messages delivered to this node's subscribers."))
        pubsubDisconnections = registry.makeCounter(
            descriptor: descriptor(
                "strata_pubsub_output_limit_disconnections_total",
                "Subscribers closed because their unread output passed client-output-buffer-limit pubsub."))
        connections = registry.makeCounter(descriptor: descriptor("strata_connections_total", "Client connections accepted."))
        rejectedConnections = registry.makeCounter(
            descriptor: descriptor("strata_rejected_connections_total", "Client connections refused because --max-clients was reached."))
        let network = descriptor("strata_network_bytes_total", "Bytes received from and sent to clients.")
        bytesIn = registry.makeCounter(descriptor: network, labels: [("direction", "in")])
        bytesOut = registry.makeCounter(descriptor: network, labels: [("direction", "out")])
        protocolErrors = registry.makeCounter(
            descriptor: descriptor("strata_protocol_errors_total", "Connections closed because they sent malformed RESP."))
        fsyncDuration = registry.makeDurationHistogram(
            descriptor: descriptor("strata_fsync_duration_seconds", "Time to sync the disk tier to stable storage."),
            buckets: latencyBuckets)
        forwarded = registry.makeCounter(
            descriptor: descriptor("strata_forwarded_requests_total", "Commands sent on to another node that owns their keys."))
        let replication = descriptor("strata_replication_writes_total", "Records sent to other owners, by result.")
        let ranges = descriptor("strata_antientropy_ranges_total", "Ring ranges compared with a peer by anti-entropy, by result.")
        cluster = ClusterMetrics(
            replicated: registry.makeCounter(descriptor: replication, labels: [("result", "ok")]),
            replicationFailures: registry.makeCounter(descriptor: replication, labels: [("result", "failed")]),
            replicationLag: registry.makeDurationHistogram(
                descriptor: descriptor(
                    "strata_replication_lag_seconds", "Time from a write's local apply to another owner acknowledging its copy."),
                buckets: latencyBuckets),
            repaired: registry.makeCounter(
                descriptor: descriptor("strata_repair_records_total", "Newer records taken from peers by repair.")),
            handedOff: registry.makeCounter(
                descriptor: descriptor("strata_hints_replayed_total", "Missed writes handed to an owner that came back.")),
            rebalanced: registry.makeCounter(
                descriptor: descriptor(
                    "strata_rebalance_keys_total", "Records moved to their new owners because a node joined or left.")),
            rangesEqual: registry.makeCounter(descriptor: ranges, labels: [("result", "equal")]),
            rangesDiffering: registry.makeCounter(descriptor: ranges, labels: [("result", "differing")]))
        hintsPending = registry.makeGauge(
            descriptor: descriptor("strata_hints_pending", "Keys whose writes a down owner missed, waiting to be handed off."))
        clusterFileErrors = registry.makeCounter(
            descriptor: descriptor(
                "strata_cluster_file_errors_total", "Hint or membership files that could not be written (see the node's log)."))
        replicationInFlight = registry.makeGauge(
            descriptor: descriptor("strata_replication_in_flight", "Copies of writes sent to other owners and not yet acknowledged."))
        ringEpoch = registry.makeGauge(
            descriptor: descriptor("strata_ring_epoch", "The cluster membership epoch this node has (rises with every join or leave)."))
        let members = descriptor("strata_cluster_members", "Cluster members this node knows, by membership state.")
        membersByState = Dictionary(
            uniqueKeysWithValues: [Membership.Member.State.normal, .joining, .leaving].map {
                ($0, registry.makeGauge(descriptor: members, labels: [("state", $0.rawValue)]))
            })
        storeMetrics = StoreMetrics(registry: registry)
        // The process, under the standard client-library names dashboards already know.
        residentMemory = registry.makeGauge(descriptor: descriptor("process_resident_memory_bytes", "Resident memory size in bytes."))
        cpuSeconds = registry.makeCounter(
            descriptor: descriptor("process_cpu_seconds_total", "Total user and system CPU time spent in seconds."))
        openFiles = registry.makeGauge(descriptor: descriptor("process_open_fds", "Number of open file descriptors."))
        startTime = registry.makeGauge(
            descriptor: descriptor("process_start_time_seconds", "Start time of the process since the Unix epoch in seconds."))
        startTime.set(to: Double(currentTimeMilliseconds()) / 1000)
        memory = ProcessMemoryMetrics(registry: registry)
        unknownCommand = ServerMetrics.makeCommandMetrics(registry, "unknown")
    }

    private static func makeCommandMetrics(_ registry: PrometheusCollectorRegistry, _ name: String) -> CommandMetrics {
        CommandMetrics(
            calls: registry.makeCounter(
                descriptor: descriptor("strata_commands_total", "Commands processed, by command."), labels: [("command", name)]),
            errors: registry.makeCounter(
                descriptor: descriptor("strata_command_errors_total", "Commands answered with an error, by command."),
                labels: [("command", name)]),
            duration: registry.makeDurationHistogram(
                descriptor: descriptor("strata_command_duration_seconds", "Time from a command's arrival to its reply being ready, by command."),
                labels: [("command", name)], buckets: latencyBuckets))
    }

    func forCommand(_ name: String) -> CommandMetrics {
        ServerMetrics.makeCommandMetrics(registry, name)
    }

    var unknown: CommandMetrics { unknownCommand }

    /// A swift-metrics factory for the store: it maps the store's metric labels onto this
    /// registry's metrics (which carry help text); any other label gets a no-op.
    public var storeFactory: any MetricsFactory { StoreMetricsFactory(fsync: fsyncDuration) }

    /// Reads the store's counters into the registry and renders the Prometheus text format.
    public func render(store: TieredStore, server: Server?) -> [UInt8] {
        let statistics = store.statistics
        storeMetrics.refresh(statistics)
        refreshProcess()
        memory.refresh(store: store, budget: statistics.memoryBudget)
        if let server {
            connectedClients.set(Double(server.connectedClients))
            blockedClients.set(Double(server.blocked.waiting))
            pubsubChannels.set(Double(server.pubsub.channelCount))
            pubsubPatterns.set(Double(server.pubsub.patternCount))
            let now = server.counters.snapshot()
            exported.withLock { last in
                connections.increment(by: Int64(now.connectionsReceived - last.connectionsReceived))
                rejectedConnections.increment(by: Int64(now.connectionsRejected - last.connectionsRejected))
                bytesIn.increment(by: Int64(now.bytesIn - last.bytesIn))
                bytesOut.increment(by: Int64(now.bytesOut - last.bytesOut))
                last = now
            }
            if let cluster = server.cluster {
                hintsPending.set(Double(cluster.pendingHints))
                let failures = cluster.fileWriteFailures
                clusterFileErrorsSeen.withLock { seen in
                    clusterFileErrors.increment(by: Int64(failures - seen))
                    seen = failures
                }
                replicationInFlight.set(Double(cluster.replicationInFlight))
                let membership = cluster.membership
                ringEpoch.set(Double(membership.epoch))
                for (state, gauge) in membersByState {
                    gauge.set(Double(membership.members.filter { $0.state == state }.count))
                }
                let up = descriptor("strata_peer_up", "1 if this node can reach the peer, else 0.")
                let states = cluster.cluster.peerStates
                let registry = self.registry
                peerUp.withLock { gauges in
                    for (peer, gauge) in gauges where states[peer] == nil {
                        registry.unregisterGauge(gauge)
                        gauges[peer] = nil
                    }
                    for (peer, state) in states {
                        if gauges[peer] == nil { gauges[peer] = registry.makeGauge(descriptor: up, labels: [("peer", peer.name)]) }
                        gauges[peer]?.set(to: state.up ? 1.0 : 0.0)
                    }
                }
            }
        }
        return registry.emitToBuffer()
    }
}

extension ServerMetrics {
    /// Reads /proc/self: resident memory, CPU time, open descriptors.
    func refreshProcess() {
        if let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8),
            let pages = Double(statm.split(separator: " ").dropFirst().first ?? "")
        {
            residentMemory.set(to: pages * Double(sysconf(Int32(_SC_PAGESIZE))))
        }
        var usage = rusage()
        if getrusage(RUSAGE_SELF.rawValue, &usage) == 0 {
            let user = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
            let system = Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
            let delta = cpuSecondsSeen.withLock { seen -> Double in
                defer { seen = max(seen, user + system) }
                return user + system - seen
            }
            if delta > 0 { cpuSeconds.increment(by: delta) }
        }
        if let fds = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") {
            openFiles.set(to: Double(fds.count))
        }
    }
}

/// Hands the store's swift-metrics calls to registry metrics that have help text.
struct StoreMetricsFactory: MetricsFactory {
    let fsync: DurationHistogram

    final class FsyncTimer: TimerHandler {
        let histogram: DurationHistogram
        init(_ histogram: DurationHistogram) { self.histogram = histogram }
        func recordNanoseconds(_ duration: Int64) { histogram.recordNanoseconds(duration) }
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        NOOPMetricsHandler.instance
    }
    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        NOOPMetricsHandler.instance
    }
    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        label == "strata_fsync_duration" ? FsyncTimer(fsync) : NOOPMetricsHandler.instance
    }
    func destroyCounter(_ handler: any CounterHandler) {}
    func destroyRecorder(_ handler: any RecorderHandler) {}
    func destroyTimer(_ handler: any TimerHandler) {}
}
