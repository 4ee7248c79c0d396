import Foundation
import Logging

@testable import StrataStore

/// A fresh temporary data directory, removed when the test's closure returns.
func withTemporaryDirectory<R>(_ body: (String) throws -> R) rethrows -> R {
    let path = FileManager.default.temporaryDirectory
        .appendingPathComponent("strata-test-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try body(path)
}

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

func quietLogger() -> Logger {
    var logger = Logger(label: "strata.test")
    logger.logLevel = .critical
    return logger
}

func openStore(
    _ path: String, memory: Int = 8 << 20, disk: Int = 64 << 20, fsync: FsyncMode = .everysec,
    threshold: Int = 1024, shards: Int? = nil, warm: Bool = true
) throws -> TieredStore {
    try TieredStore(
        path: path,
        configuration: StoreConfiguration(
            memoryBudget: memory, diskBudget: disk, compressThreshold: threshold, fsync: fsync,
            snapshotInterval: 0, memoryShards: shards, warmStart: warm),
        logger: quietLogger())
}

/// Polls `condition` every 10 ms for at most `seconds`.
func eventually(seconds: Double = 5, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        usleep(10_000)
    }
    return condition()
}
