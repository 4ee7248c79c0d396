import NIOCore
import Prometheus
import RESP

/// Properties of a command that the dispatcher acts on.
struct CommandFlags: OptionSet, Sendable {
    let rawValue: Int
    /// Changes data: under `--fsync always` its reply waits for the sync.
    static let write = CommandFlags(rawValue: 1)
    /// Allowed before AUTH.
    static let noAuth = CommandFlags(rawValue: 2)
    /// Does not touch keys (connection and server commands).
    static let admin = CommandFlags(rawValue: 4)
    /// Has subcommands (CLIENT, CONFIG, COMMAND): shown as `client|list` in CLIENT LIST.
    static let container = CommandFlags(rawValue: 8)
    /// Takes keys but always runs on the node it was sent to (introspection such as STRATA.TIER).
    static let local = CommandFlags(rawValue: 16)
    /// Its keys must share a coordinator in a cluster (RENAME, COPY, BITOP...): it is never split
    /// across nodes, and keys with different coordinators get Redis Cluster's CROSSSLOT error.
    static let oneNode = CommandFlags(rawValue: 32)
    /// Not allowed inside MULTI (WATCH, MULTI itself, SUBSCRIBE...): Redis' error when queued.
    static let noMulti = CommandFlags(rawValue: 64)
    /// Not allowed from a script (MULTI, EXEC, WATCH, blocking forms, SUBSCRIBE...).
    static let noScript = CommandFlags(rawValue: 128)
}

/// A command: its name, arity (Redis' convention: n = exactly n arguments including the name,
/// -n = at least n), key positions (for COMMAND), flags and handler, and its metrics.
struct CommandSpec: Sendable {
    let name: String
    let arity: Int
    let flags: CommandFlags
    let firstKey: Int
    let lastKey: Int
    let keyStep: Int
    let handler: @Sendable (inout Invocation) throws -> Outcome
    /// The keys of a command whose key count is an argument (ZUNIONSTORE, LMPOP...), where the
    /// (first, last, step) positions cannot say it; `firstKey` is then the first possible key.
    let keyFinder: (@Sendable ([ByteBuffer]) -> [ByteBuffer])?
    var metrics: CommandMetrics?

    init(
        _ name: String, arity: Int, flags: CommandFlags = [], keys: (Int, Int, Int) = (0, 0, 0),
        keyFinder: (@Sendable ([ByteBuffer]) -> [ByteBuffer])? = nil,
        _ handler: @escaping @Sendable (inout Invocation) throws -> Outcome
    ) {
        self.name = name
        self.arity = arity
        self.flags = flags
        self.firstKey = keys.0
        self.lastKey = keys.1
        self.keyStep = keys.2
        self.keyFinder = keyFinder
        self.handler = handler
    }

    /// A key finder for a command whose key is argument 1 and whose options may name more keys
    /// (SORT's STORE, GEORADIUS's STORE and STOREDIST): the key after each such option word.
    static func keyAndOptionKeys(_ options: Set<String>) -> @Sendable ([ByteBuffer]) -> [ByteBuffer] {
        { arguments in
            var keys: [ByteBuffer] = arguments.count > 1 ? [arguments[1]] : []
            var i = 2
            while i + 1 < arguments.count {
                if options.contains(String(buffer: arguments[i]).uppercased()) { keys.append(arguments[i + 1]) }
                i += 1
            }
            return keys
        }
    }

    /// A key finder for `numkeys key [key ...]` with `numkeys` at `index` (an invalid count gives
    /// no keys; the handler then answers its error).
    static func numkeys(at index: Int) -> @Sendable ([ByteBuffer]) -> [ByteBuffer] {
        { arguments in
            guard index < arguments.count, let n = Invocation.parseInteger(arguments[index].readableBytesView), n > 0,
                index + n < arguments.count
            else { return [] }
            return Array(arguments[(index + 1)...(index + n)])
        }
    }

    /// Whether a cluster routes this command to its keys' owners.
    var routes: Bool { firstKey > 0 && !flags.contains(.local) }

    /// The keys among `arguments`, by the spec's key positions.
    func keys(in arguments: [ByteBuffer]) -> [ByteBuffer] {
        if let keyFinder { return keyFinder(arguments) }
        guard firstKey > 0, arguments.count > firstKey else { return [] }
        let last = lastKey < 0 ? arguments.count + lastKey : min(lastKey, arguments.count - 1)
        return stride(from: firstKey, through: last, by: max(1, keyStep)).map { arguments[$0] }
    }

    func arityMatches(_ count: Int) -> Bool {
        arity >= 0 ? count == arity : count >= -arity
    }
}

/// Every command the node knows, by lowercase name.
struct CommandTable: Sendable {
    private(set) var commands: [String: CommandSpec] = [:]

    init(metrics: ServerMetrics) {
        for var spec in Commands.all {
            spec.metrics = metrics.forCommand(spec.name)
            commands[spec.name] = spec
        }
    }

    /// The command named by `name` (any case).
    func lookup(_ name: ByteBuffer) -> CommandSpec? {
        guard name.readableBytes <= 32 else { return nil }
        var lower = [UInt8](name.readableBytesView)
        for i in lower.indices where lower[i] >= UInt8(ascii: "A") && lower[i] <= UInt8(ascii: "Z") {
            lower[i] += 32
        }
        return commands[String(decoding: lower, as: UTF8.self)]
    }
}

/// Namespaces the command definitions (one file per family).
enum Commands {
    static var all: [CommandSpec] {
        strings + ranges + bits + keys + rename + dump + object + memory + keyspace + transactions + scripting + wait
            + hashes + lists + sets + sortedSets + geo + sort
            + pubsub + connection + server + slowlog + config + cluster
    }
}
