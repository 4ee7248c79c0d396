import Prometheus
import StrataStore

/// The process's memory against `--memory`, and the bounded queues that take memory outside
/// the memory tier: set at each scrape from `ProcessMemory` and the store.
final class ProcessMemoryMetrics: Sendable {
    let anonymous: Prometheus.Gauge
    let heapInUse: Prometheus.Gauge
    let heapFree: Prometheus.Gauge
    let limit: Prometheus.Gauge
    let backlog: Prometheus.Gauge
    let backlogLimit: Prometheus.Gauge

    init(registry r: PrometheusCollectorRegistry) {
        anonymous = r.makeGauge(
            descriptor: descriptor(
                "strata_process_anonymous_memory_bytes",
                "Resident anonymous memory of the process (RssAnon: heap, stacks, LMDB's dirty pages; not mapped files)."))
        let heap = descriptor("strata_heap_bytes", "The allocator's heap: bytes in use, and bytes freed but still held (free).")
        heapInUse = r.makeGauge(descriptor: heap, labels: [("state", "in_use")])
        heapFree = r.makeGauge(descriptor: heap, labels: [("state", "free")])
        limit = r.makeGauge(
            descriptor: descriptor(
                "strata_process_memory_limit_bytes",
                "Resident anonymous memory the node promises to stay under outside write bursts: --memory + min(--memory, 64 MiB)."))
        backlog = r.makeGauge(
            descriptor: descriptor(
                "strata_write_backlog_bytes", "Bytes of writes queued for the disk tier or being applied to it."))
        backlogLimit = r.makeGauge(
            descriptor: descriptor(
                "strata_write_backlog_limit_bytes", "Queued write bytes past which writes wait for the disk tier (from --memory)."))
    }

    func refresh(store: TieredStore, budget: Int) {
        let reading = ProcessMemory.read()
        anonymous.set(to: Double(reading.anonymous))
        heapInUse.set(to: Double(reading.heapInUse))
        heapFree.set(to: Double(reading.heapFree))
        limit.set(to: Double(ProcessMemory.limit(budget: budget)))
        backlog.set(to: Double(store.writeBacklogBytes))
        backlogLimit.set(to: Double(store.writeBacklogLimit))
    }
}
