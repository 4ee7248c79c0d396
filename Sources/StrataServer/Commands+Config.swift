import NIOCore
import StrataCollections
import RESP
import StrataStore

extension Commands {
    /// CONFIG GET, SET, RESETSTAT, REWRITE and HELP, with Redis 7's replies and errors.
    static let config: [CommandSpec] = [
        CommandSpec("config", arity: -2, flags: [.admin, .container]) { inv in
            switch inv.upper(1) {
            case "GET":
                guard inv.arguments.count >= 3 else { throw CommandError.arity("config|get") }
                configGet(&inv)
            case "SET":
                guard inv.arguments.count >= 4 else { throw CommandError.arity("config|set") }
                guard inv.arguments.count % 2 == 0 else { throw CommandError.syntax }
                try configSet(inv)
                inv.ok()
            case "RESETSTAT":
                guard inv.arguments.count == 2 else { throw CommandError.arity("config|resetstat") }
                // INFO counts from a new baseline; /metrics keeps the totals (Prometheus
                // counters never go down).
                InfoReport.resetStatistics(inv.server)
                inv.ok()
            case "REWRITE":
                guard inv.arguments.count == 2 else { throw CommandError.arity("config|rewrite") }
                throw CommandError("ERR The server is running without a config file")
            case "HELP":
                guard inv.arguments.count == 2 else { throw CommandError.arity("config|help") }
                writeHelp(configHelp, command: "CONFIG", into: &inv.out)
            default:
                throw CommandError("ERR unknown subcommand '\(inv.string(1))'. Try CONFIG HELP.")
            }
            return .done
        }
    ]

    /// Every parameter matching any pattern (Redis' glob, any case), once each, as a map. A
    /// pattern without glob characters naming a parameter answers under the name as written.
    private static func configGet(_ inv: inout Invocation) {
        let parameters = ConfigParameter.all
        var matched: [(name: String, value: String)] = []
        var seen = Set<String>()
        for i in 2..<inv.arguments.count {
            let pattern = inv.string(i)
            if !pattern.contains(where: { "*?[".contains($0) }) {
                if let parameter = parameters.first(where: { $0.name == pattern.lowercased() }), seen.insert(parameter.name).inserted {
                    matched.append((pattern, parameter.get(inv.server)))
                }
                continue
            }
            for parameter in parameters
            where GlobPattern.matches(Array(pattern.utf8), Array(parameter.name.utf8), caseInsensitive: true)
                && seen.insert(parameter.name).inserted
            {
                matched.append((parameter.name, parameter.get(inv.server)))
            }
        }
        inv.out.writeRESPMapHeader(matched.count, inv.version)
        for (name, value) in matched {
            inv.bulk(name)
            inv.bulk(value)
        }
    }

    /// Sets every pair or none: each name is checked (known, settable, not repeated; errors name
    /// it as written), then each value (errors give its canonical name), and only then is
    /// anything applied (Redis 7 restores on failure instead).
    private static func configSet(_ inv: Invocation) throws {
        let pairs = stride(from: 2, to: inv.arguments.count, by: 2).map { (name: inv.string($0), value: inv.string($0 + 1)) }
        var parameters: [ConfigParameter] = []
        for (i, pair) in pairs.enumerated() {
            guard let parameter = ConfigParameter.all.first(where: { $0.name == pair.name.lowercased() }) else {
                throw CommandError("ERR Unknown option or number of arguments for CONFIG SET - '\(pair.name)'")
            }
            guard parameter.set != nil else { throw ConfigParameter.failure(pair.name, "can't set immutable config") }
            if pairs[..<i].contains(where: { $0.name.lowercased() == pair.name.lowercased() }) {
                throw ConfigParameter.failure(pair.name, "duplicate parameter")
            }
            parameters.append(parameter)
        }
        var changes: [@Sendable (Server) -> Void] = []
        for (pair, parameter) in zip(pairs, parameters) {
            do {
                changes.append(try parameter.set!(pair.value))
            } catch let reason as ConfigParameter.Invalid {
                throw ConfigParameter.failure(parameter.name, reason.text)
            }
        }
        for change in changes { change(inv.server) }
        if inv.server.settings.clientIdleTimeoutSeconds > 0 { inv.server.startIdleSweep(on: inv.eventLoop) }
    }

    static let configHelp = [
        "GET <pattern>",
        "    Return parameters matching the glob-like <pattern> and their values.",
        "SET <directive> <value>",
        "    Set the configuration <directive> to <value>.",
        "RESETSTAT",
        "    Reset statistics reported by the INFO command.",
        "REWRITE",
        "    Rewrite the configuration file.",
    ]
}

/// A parameter CONFIG GET reports: Redis' name where one exists (with the value Strata's flags
/// or live settings give it), then Strata's own flags. Those with `set` change live.
struct ConfigParameter: Sendable {
    let name: String
    let get: @Sendable (Server) -> String
    /// Checks a new value and returns the change to make; nil: fixed at start.
    let set: (@Sendable (String) throws -> @Sendable (Server) -> Void)?

    init(_ name: String, get: @escaping @Sendable (Server) -> String, set: (@Sendable (String) throws -> @Sendable (Server) -> Void)? = nil) {
        self.name = name
        self.get = get
        self.set = set
    }

    /// A value CONFIG SET refuses, with Redis' reason.
    struct Invalid: Error {
        let text: String
    }

    static func failure(_ name: String, _ reason: String) -> CommandError {
        CommandError("ERR CONFIG SET failed (possibly related to argument '\(name)') - \(reason)")
    }

    static let all: [ConfigParameter] = [
        ConfigParameter("bind") { $0.configuration.bind },
        ConfigParameter("port") { String($0.port) },
        ConfigParameter("databases") { _ in "1" },
        ConfigParameter("maxclients") { String($0.configuration.maxClients) },
        ConfigParameter("maxmemory", get: { String($0.store.statistics.memoryBudget) }) { text in
            // Redis' 0 means no limit; Strata's memory tier always has a budget.
            guard let bytes = memoryValue(text) else { throw Invalid(text: "argument must be a memory value") }
            // Redis' 0 (no limit) returns to the budget the node started with (`--memory`).
            return { server in server.store.resizeMemory(budget: bytes > 0 ? bytes : server.store.configuration.memoryBudget) }
        },
        ConfigParameter("maxmemory-policy", get: { _ in "allkeys-lru" }) { text in
            guard text.lowercased() == "allkeys-lru" else {
                throw Invalid(text: "Strata's memory tier evicts the least recently used keys: only allkeys-lru")
            }
            return { _ in }
        },
        ConfigParameter("maxmemory-samples") { _ in "5" },
        ConfigParameter("proto-max-bulk-len", get: { String($0.settings.protoMaxBulkLength) }) { text in
            guard let bytes = memoryValue(text) else { throw Invalid(text: "argument must be a memory value") }
            guard bytes >= 1 << 20 else { throw Invalid(text: "argument must be between 1048576 and 9223372036854775807 inclusive") }
            return { server in server.settings.protoMaxBulkLength = bytes }
        },
        ConfigParameter("client-query-buffer-limit", get: { String($0.settings.queryBufferLimit) }) { text in
            guard let bytes = memoryValue(text) else { throw Invalid(text: "argument must be a memory value") }
            guard bytes >= 1 << 20 else { throw Invalid(text: "argument must be between 1048576 and 9223372036854775807 inclusive") }
            return { server in server.settings.queryBufferLimit = bytes }
        },
        busyReplyThreshold("busy-reply-threshold"),
        busyReplyThreshold("lua-time-limit"),
        ConfigParameter("loglevel", get: { $0.settings.logLevel }) { text in
            let level = text.lowercased()
            guard LiveSettings.logLevels.contains(level) else {
                throw Invalid(text: "argument(s) must be one of the following: \(LiveSettings.logLevels.joined(separator: ", "))")
            }
            return { server in server.settings.logLevel = level }
        },
        ConfigParameter("slowlog-log-slower-than", get: { String($0.slowLog.thresholdMicroseconds) }) { text in
            guard let microseconds = Invocation.parseInteger(text.utf8) else {
                throw Invalid(text: "argument couldn't be parsed into an integer")
            }
            guard microseconds >= -1 else { throw Invalid(text: "argument must be between -1 and 9223372036854775807 inclusive") }
            return { server in server.slowLog.thresholdMicroseconds = microseconds }
        },
        ConfigParameter("slowlog-max-len", get: { String($0.slowLog.maximumLength) }) { text in
            guard let length = Invocation.parseInteger(text.utf8) else {
                throw Invalid(text: "argument couldn't be parsed into an integer")
            }
            guard length >= 0 else { throw Invalid(text: "argument must be between 0 and 9223372036854775807 inclusive") }
            return { server in server.slowLog.maximumLength = length }
        },
        ConfigParameter("client-output-buffer-limit", get: { server in
            let pubsub = server.pubsubOutputLimit.withLock { $0 }
            return "normal 0 0 0 slave 268435456 67108864 60 pubsub \(pubsub.hard) \(pubsub.soft) \(pubsub.softSeconds)"
        }) { text in
            let words = text.split(separator: " ").map(String.init)
            guard words.count % 4 == 0 else { throw Invalid(text: "Wrong number of arguments in buffer limit configuration.") }
            var pubsub: (hard: Int, soft: Int, softSeconds: Int)?
            for i in stride(from: 0, to: words.count, by: 4) {
                guard let hard = memoryValue(words[i + 1]), let soft = memoryValue(words[i + 2]),
                    let seconds = Int(words[i + 3]), seconds >= 0
                else { throw Invalid(text: "Error in hard, soft or soft_seconds setting in buffer limit configuration.") }
                switch words[i].lowercased() {
                case "pubsub":
                    pubsub = (hard, soft, seconds)
                case "normal" where (hard, soft, seconds) == (0, 0, 0),
                    "slave" where (hard, soft, seconds) == (268_435_456, 67_108_864, 60),
                    "replica" where (hard, soft, seconds) == (268_435_456, 67_108_864, 60):
                    break  // Redis' defaults, which Strata's own limits stand for
                case "normal", "slave", "replica":
                    throw Invalid(text: "Strata applies the pubsub class only; the others keep Redis' defaults")
                default:
                    throw Invalid(text: "Invalid client class specified in buffer limit configuration.")
                }
            }
            let chosen = pubsub
            return { server in if let chosen { server.pubsubOutputLimit.withLock { $0 = chosen } } }
        },
        ConfigParameter("save") { _ in "" },
        ConfigParameter("appendonly") { _ in "no" },
        ConfigParameter("appendfsync") { server in
            let fsync = server.store.configuration.fsync
            return fsync == .never ? "no" : fsync.rawValue
        },
        ConfigParameter("dir") { $0.configuration.dataDirectory },
        ConfigParameter("timeout", get: { String($0.settings.clientIdleTimeoutSeconds) }) { text in
            guard let seconds = Invocation.parseInteger(text.utf8) else {
                throw Invalid(text: "argument couldn't be parsed into an integer")
            }
            guard seconds >= 0, seconds <= Int(Int32.max) else {
                throw Invalid(text: "argument must be between 0 and 2147483647 inclusive")
            }
            return { server in server.settings.clientIdleTimeoutSeconds = seconds }
        },
        ConfigParameter("requirepass") { $0.configuration.requirePass ?? "" },
        ConfigParameter("io-threads") { String($0.configuration.ioThreads) },
        ConfigParameter("cluster-enabled") { _ in "no" },
        ConfigParameter("notify-keyspace-events") { _ in "" },
        // Strata's own flags.
        ConfigParameter("memory") { String($0.store.statistics.memoryBudget) },
        ConfigParameter("disk") { String($0.store.configuration.diskBudget) },
        ConfigParameter("compress-threshold") { String($0.store.configuration.compressThreshold) },
        ConfigParameter("fsync") { $0.store.configuration.fsync.rawValue },
        ConfigParameter("http-port") { String($0.httpPort) },
        ConfigParameter("max-value-size") { String($0.configuration.maxValueSize) },
        ConfigParameter("max-clients") { String($0.configuration.maxClients) },
        ConfigParameter("data-dir") { $0.configuration.dataDirectory },
    ] + collectionThresholds

    /// The collections' encoding thresholds (`hash-max-listpack-entries`... and the `*-ziplist-*`
    /// aliases): read by every mutation, so a change applies to the next one. Sizes in bytes take
    /// memory units, as in Redis.
    static let collectionThresholds: [ConfigParameter] = CollectionLimits.parameterNames.map { name in
        ConfigParameter(name, get: { String($0.settings.collectionLimits.value(of: name) ?? 0) }) { text in
            let isBytes = name.hasSuffix("-value")
            guard let number = isBytes ? memoryValue(text) : Invocation.parseInteger(text.utf8) else {
                throw Invalid(text: isBytes ? "argument must be a memory value" : "argument couldn't be parsed into an integer")
            }
            var check = CollectionLimits()
            do {
                try check.set(name, to: number)
            } catch {
                throw Invalid(text: (error as? CollectionCommandError)?.message ?? "\(error)")
            }
            return { server in
                var limits = server.settings.collectionLimits
                try? limits.set(name, to: number)
                server.settings.collectionLimits = limits
            }
        }
    }

    /// `busy-reply-threshold` and its old name `lua-time-limit`: one setting, in milliseconds.
    private static func busyReplyThreshold(_ name: String) -> ConfigParameter {
        ConfigParameter(name, get: { String($0.settings.busyReplyThresholdMilliseconds) }) { text in
            guard let ms = Invocation.parseInteger(text.utf8) else {
                throw Invalid(text: "argument couldn't be parsed into an integer")
            }
            guard ms >= 0 else { throw Invalid(text: "argument must be between 0 and 9223372036854775807 inclusive") }
            return { server in server.settings.busyReplyThresholdMilliseconds = ms }
        }
    }

    /// Redis' memory values: digits and an optional unit, any case (`b`; `k`, `m`, `g` powers
    /// of 1000; `kb`, `mb`, `gb` powers of 1024). Nil if malformed, negative or too large.
    static func memoryValue(_ text: String) -> Int? {
        let lower = text.lowercased()
        let digits = lower.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, let number = Int(digits) else { return nil }
        let units: [Substring: Int] = [
            "": 1, "b": 1, "k": 1000, "kb": 1024, "m": 1_000_000, "mb": 1 << 20, "g": 1_000_000_000, "gb": 1 << 30,
        ]
        guard let unit = units[lower.dropFirst(digits.count)] else { return nil }
        let (bytes, overflow) = number.multipliedReportingOverflow(by: unit)
        return overflow ? nil : bytes
    }
}

/// A parameter given at start that CONFIG SET could not take.
public struct ConfigurationError: Error, CustomStringConvertible {
    public let description: String
}

extension Server {
    /// Sets a Redis parameter that CONFIG SET can change (`hash-max-listpack-entries`...), as
    /// flags of the same name do at start; throws Redis' reason for a value it refuses.
    public func configure(_ name: String, _ value: String) throws {
        guard let parameter = ConfigParameter.all.first(where: { $0.name == name.lowercased() }), let set = parameter.set else {
            throw ConfigurationError(description: "not a parameter that can be set")
        }
        do {
            try set(value)(self)
        } catch let invalid as ConfigParameter.Invalid {
            throw ConfigurationError(description: invalid.text)
        }
    }
}
