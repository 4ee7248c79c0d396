import Prometheus
import StrataStore

/// The store's numbers as Prometheus metrics, one stored property per exported series, so a
/// misspelt metric is a compile error rather than a series that silently never appears.
///
/// The store keeps each count once (`StoreStatistics`); a scrape sets the gauges from it and
/// advances each counter by what changed since the previous scrape.
final class StoreMetrics: Sendable {
    /// One series of a metric per tier (the `tier` label).
    struct PerTier<Metric: Sendable>: Sendable {
        let memory: Metric
        let disk: Metric
    }

    let items: PerTier<Prometheus.Gauge>
    let bytes: PerTier<Prometheus.Gauge>
    let budget: PerTier<Prometheus.Gauge>
    let diskFileBytes: Prometheus.Gauge
    let pendingWrites: Prometheus.Gauge
    let writesFailing: Prometheus.Gauge
    let warmLoadedKeys: Prometheus.Gauge
    let warmSnapshotKeys: Prometheus.Gauge
    let warmDone: Prometheus.Gauge
    let warmSeconds: Prometheus.Gauge
    let flushFloor: Prometheus.Gauge

    let hits: PerTier<Prometheus.Counter>
    let misses: PerTier<Prometheus.Counter>
    let evictions: PerTier<Prometheus.Counter>
    let expired: PerTier<Prometheus.Counter>
    let promotions: Prometheus.Counter
    let compressionInput: Prometheus.Counter
    let compressionOutput: Prometheus.Counter
    let crcFailures: Prometheus.Counter
    let fsyncs: Prometheus.Counter
    let commits: Prometheus.Counter
    let writeErrors: Prometheus.Counter
    let ioErrors: Prometheus.Counter
    let flushes: Prometheus.Counter

    /// The statistics read at the previous scrape, which the counters have reached.
    private let previous = Locked<StoreStatistics?>(nil)

    init(registry r: PrometheusCollectorRegistry) {
        func gauges(_ name: String, _ help: String) -> PerTier<Prometheus.Gauge> {
            let d = descriptor(name, help)
            return PerTier(memory: r.makeGauge(descriptor: d, labels: [("tier", "memory")]), disk: r.makeGauge(descriptor: d, labels: [("tier", "disk")]))
        }
        func counters(_ name: String, _ help: String) -> PerTier<Prometheus.Counter> {
            let d = descriptor(name, help)
            return PerTier(
                memory: r.makeCounter(descriptor: d, labels: [("tier", "memory")]), disk: r.makeCounter(descriptor: d, labels: [("tier", "disk")]))
        }
        func gauge(_ name: String, _ help: String) -> Prometheus.Gauge { r.makeGauge(descriptor: descriptor(name, help)) }
        func counter(_ name: String, _ help: String) -> Prometheus.Counter { r.makeCounter(descriptor: descriptor(name, help)) }

        items = gauges("strata_tier_items", "Keys held by each tier.")
        bytes = gauges("strata_tier_bytes", "Bytes each tier uses (memory: keys, values and overhead; disk: LMDB pages).")
        budget = gauges("strata_tier_budget_bytes", "Each tier's budget (--memory, --disk).")
        diskFileBytes = gauge("strata_disk_file_bytes", "Size of the LMDB data file in use (its high-water mark).")
        pendingWrites = gauge("strata_disk_pending_writes", "Writes queued for the disk tier's next commit.")
        writesFailing = gauge("strata_disk_writes_failing", "1 while the disk tier refuses writes (budget or file system full), else 0.")
        warmLoadedKeys = gauge("strata_warmup_loaded_keys", "Keys the warm start has loaded into memory.")
        warmSnapshotKeys = gauge("strata_warmup_snapshot_keys", "Keys in the hot-key snapshot the warm start loads.")
        warmDone = gauge("strata_warmup_done", "1 once the warm start has finished, else 0.")
        warmSeconds = gauge("strata_warmup_duration_seconds", "Seconds the warm start has taken (so far).")

        flushFloor = gauge(
            "strata_flush_floor_timestamp_seconds",
            "When the newest FLUSHALL or FLUSHDB was made (Unix seconds; 0: never). Keys written before it are gone on every node.")
        flushes = counter("strata_flushes_total", "Flushes this node applied (from a client here, or from a peer).")
        hits = counters("strata_tier_hits_total", "Reads answered by each tier.")
        misses = counters("strata_tier_misses_total", "Reads each tier could not answer (a memory miss goes on to disk).")
        evictions = counters("strata_tier_evictions_total", "Entries each tier evicted to stay within its budget.")
        expired = counters("strata_expired_keys_total", "Expired entries removed from each tier.")
        promotions = counter("strata_promotions_total", "Disk hits copied back into memory.")
        compressionInput = counter(
            "strata_compression_input_bytes_total", "Value bytes that were stored compressed, before compression.")
        compressionOutput = counter("strata_compression_output_bytes_total", "Bytes those values took after compression.")
        crcFailures = counter(
            "strata_crc_failures_total", "Disk records whose checksum did not match (served as misses and removed).")
        fsyncs = counter("strata_fsyncs_total", "Syncs of the disk tier to stable storage.")
        commits = counter("strata_disk_commits_total", "Group commits of queued writes to the disk tier.")
        writeErrors = counter("strata_disk_write_errors_total", "Disk tier commits that failed (and were retried).")
        ioErrors = counter(
            "strata_disk_io_errors_total", "Other disk tier I/O that failed and was logged (reads, log syncs, sweeps, snapshots).")
    }

    func refresh(_ s: StoreStatistics) {
        items.memory.set(Double(s.memoryItems))
        items.disk.set(Double(s.diskItems))
        bytes.memory.set(Double(s.memoryBytes))
        bytes.disk.set(Double(s.diskBytes))
        budget.memory.set(Double(s.memoryBudget))
        budget.disk.set(Double(s.diskBudget))
        diskFileBytes.set(Double(s.diskFileBytes))
        pendingWrites.set(Double(s.pendingWrites))
        writesFailing.set(s.diskWritesFailing ? 1.0 : 0.0)
        warmLoadedKeys.set(Double(s.warmUp.loadedKeys))
        warmSnapshotKeys.set(Double(s.warmUp.totalKeys))
        warmDone.set(s.warmUp.done ? 1.0 : 0.0)
        warmSeconds.set(s.warmUp.seconds)
        flushFloor.set(Double(s.flushFloor.milliseconds) / 1000)

        previous.withLock { last in
            func advance(_ counter: Prometheus.Counter, _ field: KeyPath<StoreStatistics, Int>) {
                let delta = Double(s[keyPath: field] - (last?[keyPath: field] ?? 0))
                if delta > 0 { counter.increment(by: delta) }
            }
            advance(hits.memory, \.memoryHits)
            advance(hits.disk, \.diskHits)
            advance(misses.memory, \.memoryMisses)
            advance(misses.disk, \.diskMisses)
            advance(evictions.memory, \.memoryEvictions)
            advance(evictions.disk, \.diskEvictions)
            advance(expired.memory, \.memoryExpirations)
            advance(expired.disk, \.diskExpirations)
            advance(promotions, \.promotions)
            advance(compressionInput, \.compressionBytesIn)
            advance(compressionOutput, \.compressionBytesOut)
            advance(crcFailures, \.crcFailures)
            advance(fsyncs, \.fsyncs)
            advance(commits, \.commits)
            advance(writeErrors, \.writeErrors)
            advance(ioErrors, \.diskIOErrors)
            advance(flushes, \.flushes)
            last = s
        }
    }
}
