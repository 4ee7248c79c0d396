import Foundation
import StrataStore

/// The INFO reply: Redis' sections, in Redis' order and with its field names, for clients and
/// exporters, plus Strata's own `strata` section (in the default set, after `keyspace`).
enum InfoReport {
    /// Every section, in the order INFO writes them.
    static let allSections = [
        "server", "clients", "memory", "persistence", "stats", "replication", "cpu", "modules", "commandstats",
        "errorstats", "latencystats", "cluster", "keyspace", "strata",
    ]
    /// What INFO with no argument (or `default`) writes: Redis' default set, then `strata`.
    static let defaultSections = allSections.filter { $0 != "commandstats" && $0 != "latencystats" }

    /// In a cluster: the keys (and keys with an expiry) of the whole cluster, and those this node
    /// coordinates; `averageTTL`: the mean remaining time to live of the keys with an expiry, in
    /// ms (0 where not measured).
    struct KeyspaceCounts: Sendable {
        var cluster: (keys: Int, expires: Int)
        var node: (keys: Int, expires: Int)
        var averageTTL = 0
    }

    /// A single node's counts: every key, and those with an expiry, counted exactly up to a
    /// million keys and estimated from the first million beyond that (INFO must stay cheap).
    static func localCounts(_ store: TieredStore) throws -> KeyspaceCounts {
        let total = try store.count()
        let now = currentTimeMilliseconds()
        var (seen, expiring, remaining) = (0, 0, 0)
        var cursor: [UInt8]? = nil
        repeat {
            let (keys, next) = try store.scanWithExpiry(cursor: cursor, count: 10_000)
            seen += keys.count
            for key in keys where key.expiresAt != 0 {
                expiring += 1
                remaining += max(0, Int(key.expiresAt - now))
            }
            cursor = next
        } while cursor != nil && seen < 1_000_000
        let expires = cursor == nil || seen == 0 ? expiring : Int(Double(expiring) * Double(total) / Double(seen))
        return KeyspaceCounts(
            cluster: (total, expires), node: (total, expires), averageTTL: expiring > 0 ? remaining / expiring : 0)
    }

    /// The sections `requested` names (lowercase), in INFO's order: none named means the
    /// default set; `default` adds it; `all` and `everything` mean every section; unknown names
    /// add nothing, as Redis.
    static func sections(_ requested: [String]) -> [String] {
        if requested.contains("all") || requested.contains("everything") { return allSections }
        var wanted = Set(requested)
        if requested.isEmpty || wanted.contains("default") { wanted.formUnion(defaultSections) }
        return allSections.filter { wanted.contains($0) }
    }

    static func render(server: Server, sections requested: [String], keyspace: KeyspaceCounts? = nil) -> String {
        let stats = server.store.statistics
        let now = currentTimeMilliseconds()
        var text = ""
        for section in sections(requested) {
            let fields: [(String, String)]
            switch section {
            case "server": fields = serverFields(server, now: now)
            case "clients": fields = clientFields(server)
            case "memory": fields = memoryFields(stats)
            case "persistence": fields = persistenceFields(server, stats, now: now)
            case "stats": fields = statsFields(server, stats, now: now)
            case "replication": fields = replicationFields(server)
            case "cpu": fields = cpuFields()
            case "cluster": fields = [("cluster_enabled", "0")]
            case "keyspace": fields = keyspaceFields(stats, keyspace)
            case "strata": fields = strataFields(server, stats, keyspace)
            case "errorstats": fields = server.counters.errorCounts.map { ("errorstat_\($0.code)", "count=\($0.count)") }
            default: fields = []  // modules, commandstats, latencystats: none kept
            }
            text += "# \(section == "cpu" ? "CPU" : section.prefix(1).uppercased() + section.dropFirst())\r\n"
            for (name, value) in fields { text += "\(name):\(value)\r\n" }
            text += "\r\n"
        }
        return text
    }

    // MARK: Sections

    /// Strata is not Redis Cluster even in a cluster (`redis_mode:standalone`, and the cluster
    /// section's `cluster_enabled:0`): a client must not switch to cluster mode.
    static func serverFields(_ server: Server, now: Int64) -> [(String, String)] {
        let uptime = (now - server.startedAt) / 1000
        return [
            ("redis_version", StrataVersion.redisCompatible), ("strata_version", StrataVersion.current),
            ("redis_git_sha1", "00000000"), ("redis_git_dirty", "0"), ("redis_build_id", String(runID(server).prefix(16))),
            ("redis_mode", "standalone"), ("os", osDescription()), ("arch_bits", String(Int.bitWidth)),
            ("monotonic_clock", "POSIX clock_gettime"), ("multiplexing_api", "epoll"), ("atomicvar_api", "c11-builtin"),
            ("gcc_version", "0.0.0"), ("process_id", String(getpid())), ("process_supervised", "no"),
            ("run_id", runID(server)), ("tcp_port", String(server.port)), ("server_time_usec", String(now * 1000)),
            ("uptime_in_seconds", String(uptime)), ("uptime_in_days", String(uptime / 86400)),
            ("hz", "10"), ("configured_hz", "10"), ("lru_clock", String((now / 1000) & ((1 << 24) - 1))),
            ("executable", CommandLine.arguments.first ?? ""), ("config_file", ""), ("io_threads_active", "0"),
            ("io_threads", String(server.configuration.ioThreads)),
        ]
    }

    static func clientFields(_ server: Server) -> [(String, String)] {
        [
            ("connected_clients", String(server.connectedClients)), ("cluster_connections", "0"),
            ("maxclients", String(server.configuration.maxClients)), ("client_recent_max_input_buffer", "0"),
            ("client_recent_max_output_buffer", "0"), ("blocked_clients", String(server.blocked.waiting)), ("tracking_clients", "0"),
            ("clients_in_timeout_table", "0"),
        ]
    }

    /// `used_memory` is what the memory tier holds (what `maxmemory`, its budget, bounds);
    /// the process' heap and resident set are beside it. The fragmentation ratio is the
    /// resident set over the heap in use (Redis' is over `used_memory`, its allocator's total).
    static func memoryFields(_ stats: StoreStatistics) -> [(String, String)] {
        let process = ProcessMemory.read()
        let rss = process.resident > 0 ? process.resident : residentMemory()
        let system = Int(sysconf(Int32(_SC_PHYS_PAGES))) * Int(sysconf(Int32(_SC_PAGESIZE)))
        let fragmentation = process.heapInUse > 0 ? Double(rss) / Double(process.heapInUse) : 0
        return [
            ("used_memory", String(stats.memoryBytes)), ("used_memory_human", human(stats.memoryBytes)),
            ("used_memory_rss", String(rss)), ("used_memory_rss_human", human(rss)),
            ("used_memory_dataset", String(stats.memoryBytes)),
            ("allocator_allocated", String(process.heapInUse)), ("total_system_memory", String(system)),
            ("total_system_memory_human", human(system)),
            ("maxmemory", String(stats.memoryBudget)), ("maxmemory_human", human(stats.memoryBudget)),
            ("maxmemory_policy", "allkeys-lru"), ("mem_fragmentation_ratio", String(format: "%.2f", fragmentation)),
            ("mem_allocator", "libc"), ("lazyfree_pending_objects", "0"),
        ]
    }

    /// When the disk last held every acknowledged write, in Unix seconds (INFO's
    /// `rdb_last_save_time`, LASTSAVE): now, or a second ago while writes are queued.
    static func lastSaveTime(_ stats: StoreStatistics, now: Int64) -> Int64 {
        now / 1000 - (stats.pendingWrites > 0 ? 1 : 0)
    }

    /// Strata has no RDB or AOF: every write goes to its write-ahead log and, about once a
    /// second, into LMDB. The `rdb_*` fields describe that: changes not yet in LMDB, a last
    /// save that is now when none are pending (a second ago otherwise), a save per commit.
    static func persistenceFields(_ server: Server, _ stats: StoreStatistics, now: Int64) -> [(String, String)] {
        let status = stats.diskWritesFailing ? "err" : "ok"
        let lastSave = lastSaveTime(stats, now: now)
        return [
            ("loading", stats.warmUp.done ? "0" : "1"), ("async_loading", "0"),
            ("rdb_changes_since_last_save", String(stats.pendingWrites)), ("rdb_bgsave_in_progress", "0"),
            ("rdb_last_save_time", String(lastSave)), ("rdb_last_bgsave_status", status),
            ("rdb_last_bgsave_time_sec", "-1"), ("rdb_current_bgsave_time_sec", "-1"), ("rdb_saves", String(stats.commits)),
            ("rdb_last_cow_size", "0"), ("aof_enabled", "0"), ("aof_rewrite_in_progress", "0"),
            ("aof_rewrite_scheduled", "0"), ("aof_last_rewrite_time_sec", "-1"), ("aof_current_rewrite_time_sec", "-1"),
            ("aof_last_bgrewrite_status", "ok"), ("aof_last_write_status", status),
            ("strata_fsync", server.store.configuration.fsync.rawValue),
            ("strata_pending_writes", String(stats.pendingWrites)),
            ("strata_disk_writes_failing", stats.diskWritesFailing ? "1" : "0"),
        ]
    }

    /// `evicted_keys` counts keys the disk tier dropped (the memory tier's evictions keep the
    /// disk copy: `memory_evictions` in the strata section); `keyspace_misses`, reads that found
    /// the key in neither tier.
    static func statsFields(_ server: Server, _ stats: StoreStatistics, now: Int64) -> [(String, String)] {
        let totals = server.counters.snapshot()
        let rates = server.counters.rates.rates(totals: totals, now: now)
        let base = server.counters.baseline.withLock { $0 }
        let store = storeTotals(stats)
        return [
            ("total_connections_received", String(totals.connectionsReceived - base.traffic.connectionsReceived)),
            ("total_commands_processed", String(totals.commandsProcessed - base.traffic.commandsProcessed)),
            ("instantaneous_ops_per_sec", String(rates.opsPerSecond)),
            ("total_net_input_bytes", String(totals.bytesIn - base.traffic.bytesIn)),
            ("total_net_output_bytes", String(totals.bytesOut - base.traffic.bytesOut)),
            ("instantaneous_input_kbps", String(format: "%.2f", rates.inputKbps)),
            ("instantaneous_output_kbps", String(format: "%.2f", rates.outputKbps)),
            ("rejected_connections", String(totals.connectionsRejected - base.traffic.connectionsRejected)),
            ("sync_full", "0"), ("sync_partial_ok", "0"), ("sync_partial_err", "0"),
            ("expired_keys", String(store.expired - base.expired)),
            ("expired_stale_perc", "0.00"), ("evicted_keys", String(store.evicted - base.evicted)), ("evicted_clients", "0"),
            ("keyspace_hits", String(store.hits - base.hits)), ("keyspace_misses", String(store.misses - base.misses)),
            ("latest_fork_usec", "0"), ("total_forks", "0"),
            ("total_error_replies", String(server.counters.errorReplies.load(ordering: .relaxed) - base.errorReplies)),
        ]
    }

    /// The store's totals behind INFO's stats: expired, evicted (dropped from disk), hits, misses.
    static func storeTotals(_ stats: StoreStatistics) -> (expired: Int, evicted: Int, hits: Int, misses: Int) {
        (stats.memoryExpirations + stats.diskExpirations, stats.diskEvictions, stats.memoryHits + stats.diskHits, stats.diskMisses)
    }

    /// CONFIG RESETSTAT: INFO's stats and errorstats count from now.
    static func resetStatistics(_ server: Server) {
        let store = storeTotals(server.store.statistics)
        let traffic = server.counters.snapshot()
        let errors = server.counters.errorReplies.load(ordering: .relaxed)
        server.counters.baseline.withLock {
            $0 = ServerCounters.Baseline(
                traffic: traffic, errorReplies: errors, expired: store.expired, evicted: store.evicted, hits: store.hits,
                misses: store.misses)
        }
        server.counters.resetErrorCounts()
    }

    /// Strata's replication between cluster nodes is not Redis replication: to a client every
    /// node is a master without replicas.
    static func replicationFields(_ server: Server) -> [(String, String)] {
        [
            ("role", "master"), ("connected_slaves", "0"), ("master_failover_state", "no-failover"),
            ("master_replid", runID(server)), ("master_replid2", String(repeating: "0", count: 40)),
            ("master_repl_offset", "0"), ("second_repl_offset", "-1"), ("repl_backlog_active", "0"),
            ("repl_backlog_size", "1048576"), ("repl_backlog_first_byte_offset", "0"), ("repl_backlog_histlen", "0"),
        ]
    }

    static func cpuFields() -> [(String, String)] {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func seconds(_ time: timeval) -> String { String(format: "%.6f", Double(time.tv_sec) + Double(time.tv_usec) / 1e6) }
        return [
            ("used_cpu_sys", seconds(usage.ru_stime)), ("used_cpu_user", seconds(usage.ru_utime)),
            ("used_cpu_sys_children", "0.000000"), ("used_cpu_user_children", "0.000000"),
        ]
    }

    /// `db0` when there are keys; no line at all when there are none, as Redis.
    static func keyspaceFields(_ stats: StoreStatistics, _ keyspace: KeyspaceCounts?) -> [(String, String)] {
        if let keyspace {
            guard keyspace.cluster.keys > 0 else { return [] }
            return [("db0", "keys=\(keyspace.cluster.keys),expires=\(keyspace.cluster.expires),avg_ttl=\(keyspace.averageTTL)")]
        }
        // The cluster's counts could not be gathered: this node's own.
        return stats.diskItems > 0 ? [("db0", "keys=\(stats.diskItems),expires=0,avg_ttl=0")] : []
    }

    static func strataFields(_ server: Server, _ stats: StoreStatistics, _ keyspace: KeyspaceCounts?) -> [(String, String)] {
        [
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
    }

    /// This process' 40-hex-digit run id (Redis' `run_id`, also its `master_replid`): derived
    /// from the process id, start time and port, so it changes on every start.
    static func runID(_ server: Server) -> String {
        let seed = Array("\(getpid())-\(server.startedAt)-\(server.port)".utf8)
        let words = (0..<3).map { StableHash.hash(seed, seed: UInt64($0)) }
        return words.map { String(format: "%016llx", $0) }.joined().prefix(40).description
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
