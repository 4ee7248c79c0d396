import Logging
import Synchronization

/// The log level of every logger of the process, changed live by CONFIG SET loglevel. The
/// executable bootstraps logging with `SwitchedLogHandler`s that read it on every message.
public final class LogLevelSwitch: Sendable {
    private static let levels = Logger.Level.allCases
    private let index: Atomic<Int>

    public init(_ level: Logger.Level) {
        index = Atomic(Self.levels.firstIndex(of: level) ?? 2)
    }

    public var level: Logger.Level {
        get { Self.levels[index.load(ordering: .relaxed)] }
        set { index.store(Self.levels.firstIndex(of: newValue) ?? 2, ordering: .relaxed) }
    }
}

/// A log handler whose level is the switch's: it writes through `inner` what passes it.
public struct SwitchedLogHandler: LogHandler {
    private var inner: any LogHandler
    private let levelSwitch: LogLevelSwitch

    public init(_ inner: any LogHandler, levelSwitch: LogLevelSwitch) {
        var inner = inner
        inner.logLevel = .trace  // the switch filters
        self.inner = inner
        self.levelSwitch = levelSwitch
    }

    /// A level set on one logger (libraries set their own): it can only make that logger
    /// quieter than the switch, never change the others.
    private var ownLevel: Logger.Level = .trace

    public var logLevel: Logger.Level {
        get { max(levelSwitch.level, ownLevel) }
        set { ownLevel = newValue }
    }

    public var metadataProvider: Logger.MetadataProvider? {
        get { inner.metadataProvider }
        set { inner.metadataProvider = newValue }
    }

    public var metadata: Logger.Metadata {
        get { inner.metadata }
        set { inner.metadata = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { inner[metadataKey: key] }
        set { inner[metadataKey: key] = newValue }
    }

    public func log(event: LogEvent) {
        inner.log(event: event)
    }
}
