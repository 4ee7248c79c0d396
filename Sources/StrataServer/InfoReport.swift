import Foundation
import StrataStore

/// The INFO reply: Redis' sections and field names where one exists, plus a `strata` section.
enum InfoReport {
    static let defaultSections = ["server", "clients", "memory", "persistence", "stats", "keyspace", "strata"]

    /// In a cluster: the keys (and keys with an expiry) of the whole cluster, and those this node
    /// coordinates.
    struct KeyspaceCounts: Sendable {
        var cluster: (keys: Int, expires: Int)
        var node: (keys: Int, expires: Int)
    }

    /// A single node's counts: every key, and those with an expiry, counted exactly up to a
    /// million keys and estimated from the first million beyond that (INFO must stay cheap).
    static func localCounts(_ store: TieredStore) throws -> KeyspaceCounts {
        let total = try store.count()
        var (seen, expiring) = (0, 0)
        var cursor: [UInt8]? = nil
        repeat {
            let (keys, next) = try store.scanWithExpiry(cursor: cursor, count: 10_000)
            seen += keys.count
            expiring += keys.reduce(0) { $0 + ($1.expiresAt != 0 ? 1 : 0) }
            cursor = next
        } while cursor != nil && seen < 1_000_000
        let expires = cursor == nil || seen == 0 ? expiring : Int(Double(expiring) * Double(total) / Double(seen))
        return KeyspaceCounts(cluster: (total, expires), node: (total, expires))
    }

    static func sections(_ requested: [String]) -> [String] {
        let sections = requested.isEmpty || requested.contains("default") || requested.contains("all")
            || requested.contains("everything") ? defaultSections : requested
        return sections.filter { defaultSections.contains($0) }
    }

    static func render(server: Server, sections requested: [String], keyspace: KeyspaceCounts? = nil) -> String {
        let sections = sections(requested)
        let stats = server.store.statistics
        let now = currentTimeMilliseconds()
        var text = ""
        for section in sections {
            var fields: [(String, String)] = []
            switch section {
            case "server":
                let uptime = (now - server.startedAt) / 1000
                fields = [
                    ("redis_version", StrataVersion.redisCompatible), ("strata_version", StrataVersion.current),
                    ("redis_mode", "standalone"), ("os", osDescription()), ("arch_bits", "64"),
                    ("process_id", String(getpid())), ("tcp_port", String(server.port)),
                    ("uptime_in_seconds", String(uptime)), ("uptime_in_days", String(uptime / 86400)),
                    ("executable", CommandLine.arguments.first ?? ""),
                    ("io_threads", String(server.configuration.ioThreads)),
                ]
            case "clients":
                fields = [
                    ("connected_clients", String(server.connectedClients)),
                    ("maxclients", String(server.configuration.maxClients)), ("blocked_clients", "0"),
                ]
            case "memory":
                let rss = residentMemory()
                fields = [
                    ("used_memory", String(stats.memoryBytes)), ("used_memory_human", human(stats.memoryBytes)),
                    ("used_memory_rss", String(rss)), ("used_memory_rss_human", human(rss)),
                    ("maxmemory", String(stats.memoryBudget)), ("maxmemory_human", human(stats.memoryBudget)),
                    ("maxmemory_policy", "allkeys-lru"), ("mem_allocator", "libc"),
                ]
            case "persistence":
                fields = [
                    ("loading", stats.warmUp.done ? "0" : "1"), ("aof_enabled", "0"),
                    ("strata_fsync", server.store.configuration.fsync.rawValue),
                    ("strata_pending_writes", String(stats.pendingWrites)),
                    ("strata_disk_writes_failing", stats.diskWritesFailing ? "1" : "0"),
                ]
            case "stats":
                fields = [
                    ("total_connections_received", String(server.counters.connectionsReceived.load(ordering: .relaxed))),
                    ("total_commands_processed", String(server.counters.commandsProcessed.load(ordering: .relaxed))),
                    ("total_net_input_bytes", String(server.counters.bytesIn.load(ordering: .relaxed))),
                    ("total_net_output_bytes", String(server.counters.bytesOut.load(ordering: .relaxed))),
                    ("rejected_connections", String(server.counters.connectionsRejected.load(ordering: .relaxed))),
                    ("expired_keys", String(stats.memoryExpirations + stats.diskExpirations)),
                    ("evicted_keys", String(stats.diskEvictions)),
                    ("keyspace_hits", String(stats.memoryHits + stats.diskHits)),
                    ("keyspace_misses", String(stats.diskMisses)),
                ]
            case "keyspace":
                if let keyspace {
                    if keyspace.cluster.keys > 0 {
                        fields = [("db0", "keys=\(keyspace.cluster.keys),expires=\(keyspace.cluster.expires),avg_ttl=0")]
                    }
                } else if stats.diskItems > 0 {
                    fields = [("db0", "keys=\(stats.diskItems),expires=0,avg_ttl=0")]
                }
            case "strata":
                fields = [
                    ("memory_items", String(stats.memoryItems)), ("memory_bytes", String(stats.memoryBytes)),
                    ("memory_budget", String(stats.memoryBudget)), ("memory_hits", String(stats.memoryHits)),
                    ("memory_misses", String(stats.memoryMisses)), ("memory_evictions", String(stats.memoryEvictions)),
                    ("disk_items", String(stats.diskItems)), ("disk_bytes", String(stats.diskBytes)),
                    ("disk_budget", String(stats.diskBudget)), ("disk_file_bytes", String(stats.diskFileBytes)),
                    ("disk_hits", String(stats.diskHits)), ("disk_misses", String(stats.diskMisses)),
                    ("disk_evictions", String(stats.diskEvictions)), ("promotions", String(stats.promotions)),
                    ("compression_bytes_in", String(stats.compressionBytesIn)),
                    ("compression_bytes_out", String(stats.compressionBytesOut)),
                    ("crc_failures", String(stats.crcFailures)), ("fsyncs", String(stats.fsyncs)),
                    ("warmup_done", stats.warmUp.done ? "1" : "0"), ("warmup_loaded_keys", String(stats.warmUp.loadedKeys)),
                    ("warmup_snapshot_keys", String(stats.warmUp.totalKeys)),
                    ("warmup_seconds", String(format: "%.3f", stats.warmUp.seconds)),
                    ("data_dir", server.configuration.dataDirectory),
                    ("node_keys", String(keyspace?.node.keys ?? stats.diskItems)),
                    ("node_expires", String(keyspace?.node.expires ?? 0)),
                    ("flush_floor", stats.flushFloor.text), ("last_flush_time", String(stats.flushFloor.milliseconds / 1000)),
                ]
            default:
                continue
            }
            text += "# \(section.prefix(1).uppercased() + section.dropFirst())\r\n"
            for (name, value) in fields { text += "\(name):\(value)\r\n" }
            text += "\r\n"
        }
        return text
    }

    static func human(_ bytes: Int) -> String {
        let units = ["B", "K", "M", "G", "T"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(bytes)B" : String(format: "%.2f%@", value, units[unit])
    }

    static func residentMemory() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8),
            let pages = Int(text.split(separator: " ")[1])
        else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    static func osDescription() -> String {
        var name = utsname()
        uname(&name)
        func field<T>(_ value: T) -> String {
            withUnsafeBytes(of: value) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        }
        return "\(field(name.sysname)) \(field(name.release)) \(field(name.machine))"
    }
}
