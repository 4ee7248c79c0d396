import CStrataSystem
import NIOCore
import RESP
import StrataStore

extension Commands {
    /// MEMORY: a key's size (USAGE), the node's memory figures (STATS), DOCTOR, PURGE and HELP.
    static let memory: [CommandSpec] = [
        CommandSpec("memory", arity: -2, flags: .container, keys: (2, 2, 1)) { inv in
            let subcommand = inv.upper(1)
            let arity = ["USAGE": -3, "STATS": 2, "DOCTOR": 2, "MALLOC-STATS": 2, "PURGE": 2, "HELP": 2]
            guard let expected = arity[subcommand] else {
                throw CommandError("ERR unknown subcommand '\(inv.string(1))'. Try MEMORY HELP.")
            }
            let count = inv.arguments.count
            guard expected >= 0 ? count == expected : count >= -expected else {
                throw CommandError.arity("memory|\(subcommand.lowercased())")
            }
            switch subcommand {
            case "USAGE":
                return try memoryUsage(&inv)
            case "STATS":
                memoryStats(&inv)
            case "DOCTOR":
                let stats = inv.store.statistics
                writeVerbatim(
                    stats.memoryBytes > stats.memoryBudget
                        ? "Sam, the memory tier holds more than its budget (\(stats.memoryBytes) bytes of \(stats.memoryBudget)): it evicts on the next writes."
                        : "Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.",
                    version: inv.version, into: &inv.out)
            case "MALLOC-STATS":
                inv.bulk("Stats not supported for the current allocator")
            case "PURGE":
                _ = strata_malloc_trim()
                inv.ok()
            default:
                writeHelp(memoryHelp, command: "MEMORY", into: &inv.out)
            }
            return .done
        }
    ]

    /// MEMORY USAGE key [SAMPLES count]: the key's estimated bytes on this node (a string has no
    /// nested values, so SAMPLES is checked and has no effect), or null.
    private static func memoryUsage(_ inv: inout Invocation) throws -> Outcome {
        var i = 3
        while i < inv.arguments.count {
            guard inv.upper(i) == "SAMPLES", i + 1 < inv.arguments.count else { throw CommandError.syntax }
            guard try inv.integer(i + 1) >= 0 else { throw CommandError.syntax }
            i += 2
        }
        let (key, store) = (inv.bytes(2), inv.store)
        return try inv.offload { out, version in
            guard let bytes = store.memoryUsage(of: key) else { return out.writeRESPNull(version) }
            out.writeRESPInteger(bytes)
        }
    }

    /// MEMORY STATS with Redis' field names where Strata has the figure: the process heap, the
    /// memory tier's keys and bytes (the dataset), and the tier's budget.
    private static func memoryStats(_ inv: inout Invocation) {
        let stats = inv.store.statistics
        let process = ProcessMemory.read()
        let overhead = max(0, process.heapInUse - stats.memoryBytes)
        let (heap, resident) = (process.heapInUse, process.resident)
        let ratio = { (a: Int, b: Int) -> Double in b > 0 ? Double(a) / Double(b) : 0 }
        // Redis' field names and types: byte counts as integers, ratios and percentages as
        // doubles. The memory tier's entries are the dataset; glibc's heap in use is both
        // "allocated" and "active" (it does not tell them apart as jemalloc does).
        let fields: [(String, Double?, Int)] = [
            ("peak.allocated", nil, heap), ("total.allocated", nil, heap), ("startup.allocated", nil, 0),
            ("replication.backlog", nil, 0), ("clients.slaves", nil, 0), ("clients.normal", nil, 0),
            ("cluster.links", nil, 0), ("aof.buffer", nil, 0), ("lua.caches", nil, 0), ("functions.caches", nil, 0),
            ("overhead.total", nil, overhead), ("keys.count", nil, stats.memoryItems),
            ("keys.bytes-per-key", nil, stats.memoryItems > 0 ? stats.memoryBytes / stats.memoryItems : 0),
            ("dataset.bytes", nil, stats.memoryBytes), ("dataset.percentage", 100 * ratio(stats.memoryBytes, heap), 0),
            ("peak.percentage", 100.0, 0), ("allocator.allocated", nil, heap), ("allocator.active", nil, heap),
            ("allocator.resident", nil, resident), ("allocator-fragmentation.ratio", 1.0, 0),
            ("allocator-fragmentation.bytes", nil, 0), ("allocator-rss.ratio", ratio(resident, heap), 0),
            ("allocator-rss.bytes", nil, resident - heap), ("rss-overhead.ratio", 1.0, 0), ("rss-overhead.bytes", nil, 0),
            ("fragmentation", ratio(resident, heap), 0), ("fragmentation.bytes", nil, resident - heap),
            ("maxmemory", nil, stats.memoryBudget), ("strata.disk.keys", nil, stats.diskItems),
            ("strata.disk.bytes", nil, stats.diskBytes),
        ]
        inv.out.writeRESPMapHeader(fields.count, inv.version)
        for (name, double, integer) in fields {
            inv.bulk(name)
            if let double { inv.out.writeRESPDouble(double, inv.version) } else { inv.integer(reply: integer) }
        }
    }

    /// A text reply: RESP3's verbatim string (format `txt`), a bulk string in RESP2.
    static func writeVerbatim(_ text: String, version: RESPVersion, into out: inout ByteBuffer) {
        guard version == .v3 else { return out.writeRESPBulk(text) }
        out.writeString("=\(text.utf8.count + 4)\r\ntxt:\(text)\r\n")
    }

    static let memoryHelp = [
        "DOCTOR",
        "    Return memory problems reports.",
        "MALLOC-STATS",
        "    Return internal statistics report from the memory allocator.",
        "PURGE",
        "    Attempt to purge dirty pages for reclamation by the allocator.",
        "STATS",
        "    Return information about the memory usage of the server.",
        "USAGE <key> [SAMPLES <count>]",
        "    Return memory in bytes used by <key> and its value. Nested values are",
        "    sampled up to <count> times (default: 5, 0 means sample all).",
    ]
}
