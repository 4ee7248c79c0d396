import Logging
import StrataCollections
import Synchronization

/// The settings CONFIG SET changes while the node runs, read by whoever applies them. Each is an
/// atomic, read without a lock on the hot path; the flags give their start-up values.
final class LiveSettings: Sendable {
    /// Redis' log levels, least to most severe, as CONFIG GET and SET spell them.
    static let logLevels = ["debug", "verbose", "notice", "warning"]

    /// How long a script may run before other clients get BUSY (`busy-reply-threshold`, alias
    /// `lua-time-limit`), in milliseconds; the scripting engine reads it.
    private let busyReplyThreshold = Atomic<Int>(5000)
    /// Seconds a normal client may stay idle before it is closed (`timeout`; 0: never).
    private let idleTimeout = Atomic<Int>(0)
    /// The largest bulk string a new connection's parser accepts (`proto-max-bulk-len`).
    private let protoMaxBulk: Atomic<Int>
    /// Index into `logLevels` (`loglevel`).
    private let logLevelIndex: Atomic<Int>

    /// The process's log level, when the executable logs through it (CONFIG SET loglevel).
    private let levelSwitch: LogLevelSwitch?

    /// The collections' encoding thresholds (`hash-max-listpack-entries`...); each mutation
    /// reads them, so a CONFIG SET applies to the next one.
    private let limits = Mutex(CollectionLimits())
    /// The most a client's single request may hold (`client-query-buffer-limit`, Redis' 1 GiB).
    private let queryBuffer = Atomic<Int>(1 << 30)

    init(configuration: ServerConfiguration, logLevel: Logger.Level, levelSwitch: LogLevelSwitch? = nil) {
        protoMaxBulk = Atomic(configuration.maxValueSize)
        logLevelIndex = Atomic(LiveSettings.redisLevelIndex(logLevel))
        self.levelSwitch = levelSwitch
    }

    var queryBufferLimit: Int {
        get { queryBuffer.load(ordering: .relaxed) }
        set { queryBuffer.store(newValue, ordering: .relaxed) }
    }

    var collectionLimits: CollectionLimits {
        get { limits.withLock { $0 } }
        set { limits.withLock { $0 = newValue } }
    }

    var clientIdleTimeoutSeconds: Int {
        get { idleTimeout.load(ordering: .relaxed) }
        set { idleTimeout.store(newValue, ordering: .relaxed) }
    }

    var busyReplyThresholdMilliseconds: Int {
        get { busyReplyThreshold.load(ordering: .relaxed) }
        set { busyReplyThreshold.store(newValue, ordering: .relaxed) }
    }

    var protoMaxBulkLength: Int {
        get { protoMaxBulk.load(ordering: .relaxed) }
        set { protoMaxBulk.store(newValue, ordering: .relaxed) }
    }

    /// Redis' name for the log level in force.
    var logLevel: String {
        get { LiveSettings.logLevels[logLevelIndex.load(ordering: .relaxed)] }
        set {
            let index = LiveSettings.logLevels.firstIndex(of: newValue) ?? 2
            logLevelIndex.store(index, ordering: .relaxed)
            levelSwitch?.level = LiveSettings.swiftLevels[index]
        }
    }

    /// swift-log's level for each of Redis' (`redis.log` uses the same pairs).
    static let swiftLevels: [Logger.Level] = [.debug, .info, .notice, .warning]

    /// Redis' level for a swift-log level: trace and debug are Redis' debug, info its verbose,
    /// notice its notice, anything more severe its warning.
    static func redisLevelIndex(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: return 0
        case .info: return 1
        case .notice: return 2
        case .warning, .error, .critical: return 3
        }
    }
}
