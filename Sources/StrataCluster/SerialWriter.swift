import Logging
import NIOPosix
import StrataStore

/// Writes the cluster's small files (hints, the membership) on a thread of their own, one at a
/// time in the order asked: callers are on event loops, where file I/O must not run, and a later
/// write of a file must land after an earlier one. A failed write is logged and counted.
final class SerialWriter: Sendable {
    private let thread: NIOThreadPool
    private let logger: Logger
    private let failures = Locked(0)

    init(logger: Logger) {
        self.logger = logger
        // One thread: its work items run one at a time, in the order they were submitted.
        thread = NIOThreadPool(numberOfThreads: 1)
        thread.start()
    }

    deinit {
        thread.shutdownGracefully { _ in }
    }

    /// Writes that failed since the node started.
    var failedWrites: Int { failures.withLock { $0 } }

    /// Queues `work`; `what` and `file` name it in the log if it fails.
    func perform(_ what: String, file: String, _ work: @escaping @Sendable () throws -> Void) {
        let (logger, failures) = (self.logger, self.failures)
        thread.submit { state in
            guard case .active = state else { return }
            do {
                try work()
            } catch {
                failures.withLock { $0 += 1 }
                logger.error("cannot \(what)", metadata: ["file": "\(file)", "error": "\(error)"])
            }
        }
    }

    /// Returns once every write queued before it is done.
    func flush() async {
        // Only fails once the thread has stopped, when nothing is left to wait for.
        try? await thread.runIfActive {}
    }
}
