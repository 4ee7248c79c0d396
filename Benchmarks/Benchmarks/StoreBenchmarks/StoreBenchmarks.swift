// Micro benchmarks of the node-local store (StrataStore). Run: `cd Benchmarks && swift package benchmark`.
//
// The goals from the store issue (not asserted anywhere; read them off the report):
// memory-tier get < 250 ns and set < 1 µs single-threaded; disk-tier get < 5 µs for a 1 KiB value
// in page cache; >= 200,000 sets/s under everysec; warm start >= 500,000 keys/s; < 64 bytes of
// overhead per entry beyond key and value.
import Benchmark
import Dispatch
import Foundation
import StrataStore

func temporaryPath() -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("strata-bench-\(UUID().uuidString)").path
}

/// A 16-byte key, "key:" and twelve decimal digits.
func key(_ i: Int) -> [UInt8] {
    var bytes: [UInt8] = [0x6B, 0x65, 0x79, 0x3A] + [UInt8](repeating: 0x30, count: 12)
    var n = i
    var position = 15
    while n > 0 && position >= 4 {
        bytes[position] = 0x30 + UInt8(n % 10)
        n /= 10
        position -= 1
    }
    return bytes
}

/// Keys made before measuring, so the loops time the store and not key formatting.
let keys10k = (0..<10_000).map(key)
let keys100k = (0..<100_000).map(key)

/// 1,000,000 keys, and 100,000 picks among them: Zipfian (skew 0.99, ranks scattered over the
/// keys) and uniform. Large enough that the table does not fit in the CPU caches, which is where
/// the LRU bump's extra cache misses show.
let keys1M = (0..<1_000_000).map(key)
let zipfPicks: [Int] = {
    let n = keys1M.count
    var cdf = [Double](repeating: 0, count: n)
    var sum = 0.0
    for rank in 0..<n {
        sum += 1 / pow(Double(rank + 1), 0.99)
        cdf[rank] = sum
    }
    var generator = SystemRandomNumberGenerator()
    return (0..<100_000).map { _ in
        let u = Double.random(in: 0..<sum, using: &generator)
        var low = 0, high = n - 1
        while low < high {
            let mid = (low + high) / 2
            if cdf[mid] < u { low = mid + 1 } else { high = mid }
        }
        return (low &* 7_919) % n  // scatter the ranks (7,919 is prime, coprime with n)
    }
}()
let uniformPicks: [Int] = {
    var generator = SystemRandomNumberGenerator()
    return (0..<100_000).map { _ in Int.random(in: 0..<keys1M.count, using: &generator) }
}()

/// Resident set size of this process, from /proc/self/statm.
func residentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    return (Int(fields[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE)))
}

/// A store in a temporary directory; `Fixture.removeAll()` (each benchmark's teardown) closes
/// and deletes every one made so far.
final class Fixture: @unchecked Sendable {
    let path = temporaryPath()
    let store: TieredStore

    nonisolated(unsafe) static var all: [Fixture] = []  // touched only by setup/teardown, one at a time

    init(memory: Int, disk: Int = 2 << 30, fsync: FsyncMode = .everysec, warm: Bool = false) throws {
        store = try TieredStore(
            path: path,
            configuration: StoreConfiguration(
                memoryBudget: memory, diskBudget: disk, fsync: fsync, snapshotInterval: 0, warmStart: warm))
        Fixture.all.append(self)
    }

    static func removeAll() {
        for fixture in all {
            fixture.store.close()
            try? FileManager.default.removeItem(atPath: fixture.path)
        }
        all = []
    }
}

let hundredBytes = [UInt8](repeating: 0x61, count: 100)
let oneKiB = (0..<1024).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        timeUnits: .nanoseconds,
        warmupIterations: 2,
        maxDuration: .seconds(3),
        maxIterations: 1_000
    )

    // MARK: Memory tier

    Benchmark("memory-tier get (16 B key, 100 B value)", configuration: .init(scalingFactor: .kilo)) { (benchmark: Benchmark, fixture: Fixture) in
        let store = fixture.store
        var found = 0
        benchmark.startMeasurement()
        for i in benchmark.scaledIterations {
            found &+= keys10k[i % 10_000].withUnsafeBytes { store.get($0) { $0.count } } ?? 0
        }
        benchmark.stopMeasurement()
        blackHole(found)
    } setup: {
        let fixture = try Fixture(memory: 256 << 20)
        for i in 0..<10_000 { try fixture.store.set(key(i), hundredBytes) }
        return fixture
    } teardown: {
        Fixture.removeAll()
    }

    for (name, picks) in [("zipfian", zipfPicks), ("uniform", uniformPicks)] {
        Benchmark("memory-tier get, 1M keys, \(name) (16 B key, 100 B value)", configuration: .init(scalingFactor: .kilo)) { (benchmark: Benchmark, fixture: Fixture) in
            let store = fixture.store
            var found = 0
            benchmark.startMeasurement()
            for i in benchmark.scaledIterations {
                found &+= keys1M[picks[i % picks.count]].withUnsafeBytes { store.get($0) { $0.count } } ?? 0
            }
            benchmark.stopMeasurement()
            blackHole(found)
        } setup: {
            let fixture = try Fixture(memory: 1 << 30)
            for k in keys1M { try fixture.store.set(k, hundredBytes) }
            return fixture
        } teardown: {
            Fixture.removeAll()
        }
    }

    Benchmark("memory-tier set (16 B key, 100 B value, everysec)", configuration: .init(scalingFactor: .kilo)) { (benchmark: Benchmark, fixture: Fixture) in
        let store = fixture.store
        for i in benchmark.scaledIterations {
            try? store.set(keys10k[i % 10_000], hundredBytes)
        }
    } setup: {
        try Fixture(memory: 256 << 20)
    } teardown: {
        Fixture.removeAll()
    }

    // MARK: Disk tier

    Benchmark("disk-tier get (1 KiB value, not in memory)", configuration: .init(scalingFactor: .kilo)) { (benchmark: Benchmark, fixture: Fixture) in
        let store = fixture.store
        var found = 0
        benchmark.startMeasurement()
        for i in benchmark.scaledIterations {
            found &+= keys100k[i % 100_000].withUnsafeBytes { store.get($0) { $0.count } } ?? 0
        }
        benchmark.stopMeasurement()
        precondition(found == 1024 * benchmark.scaledIterations.count)
    } setup: {
        // A zero memory budget: every read goes to LMDB (in page cache after the first pass).
        let fixture = try Fixture(memory: 0)
        for i in 0..<100_000 { try fixture.store.set(key(i), oneKiB) }
        try fixture.store.sync()
        for i in 0..<100_000 { _ = fixture.store.get(key(i)) }
        return fixture
    } teardown: {
        Fixture.removeAll()
    }

    // MARK: Write throughput per fsync mode

    for mode in [FsyncMode.never, .everysec] {
        Benchmark("sets/s, 100 B values, fsync \(mode.rawValue) (100k distinct keys, until committed)",
                  configuration: .init(metrics: [.wallClock, .throughput], scalingFactor: .kilo, maxIterations: 20)) { (benchmark: Benchmark, fixture: Fixture) in
            let store = fixture.store
            benchmark.startMeasurement()
            for i in benchmark.scaledIterations {
                try? store.set(keys100k[(benchmark.currentIteration &* 1000 &+ i) % 100_000], hundredBytes)
            }
            // Include the writer catching up, so the figure is sustained, not queued.
            try? store.sync()
            benchmark.stopMeasurement()
        } setup: {
            try Fixture(memory: 64 << 20, fsync: mode)
        } teardown: {
            Fixture.removeAll()
        }
    }

    Benchmark("sets/s, 100 B values, fsync always (32 concurrent writers, each waits for its sync)",
              configuration: .init(metrics: [.wallClock, .throughput], scalingFactor: .kilo, maxIterations: 20)) { (benchmark: Benchmark, fixture: Fixture) in
        let store = fixture.store
        let writers = 32
        let perWriter = benchmark.scaledIterations.count / writers
        let base = benchmark.currentIteration &* 1000
        benchmark.startMeasurement()
        DispatchQueue.concurrentPerform(iterations: writers) { w in
            for i in 0..<perWriter {
                try? store.set(keys100k[(base &+ w &* perWriter &+ i) % 100_000], hundredBytes)
                let done = DispatchSemaphore(value: 0)
                store.whenDurable(store.writeTicket) { _ in done.signal() }
                done.wait()
            }
        }
        benchmark.stopMeasurement()
    } setup: {
        try Fixture(memory: 64 << 20, fsync: .always)
    } teardown: {
        Fixture.removeAll()
    }

    // MARK: Compression

    let compressor = ValueCompressor()
    let json4k = Array(String(repeating: "{\"id\":123456,\"name\":\"strata\",\"tags\":[\"a\",\"b\"]},", count: 90).utf8.prefix(4096))
    let json64k = Array(String(repeating: "{\"id\":123456,\"name\":\"strata\",\"tags\":[\"a\",\"b\"]},", count: 1400).utf8.prefix(65536))
    for (name, value) in [("4 KiB", json4k), ("64 KiB", json64k)] {
        Benchmark("compress \(name) JSON value", configuration: .init(metrics: [.wallClock, .throughput])) { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(value.withUnsafeBytes { compressor.compress($0)?.readableBytes })
            }
        }
        let compressed = value.withUnsafeBytes { compressor.compress($0)! }
        let compressedBytes = Array(compressed.readableBytesView)
        Benchmark("decompress \(name) JSON value", configuration: .init(metrics: [.wallClock, .throughput])) { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(try? compressedBytes.withUnsafeBytes { try compressor.decompress($0, rawLength: value.count) })
            }
        }
    }

    // MARK: Warm start

    let warmKeys = 500_000
    Benchmark("warm start: 500k keys (16 B, 100 B) loaded into memory",
              configuration: .init(metrics: [.wallClock, .custom("keys/s", polarity: .prefersLarger, useScalingFactor: false)], maxIterations: 5)) { (benchmark: Benchmark, path: String) in
        benchmark.startMeasurement()
        let store = try! TieredStore(
            path: path, configuration: StoreConfiguration(memoryBudget: 512 << 20, diskBudget: 2 << 30, snapshotInterval: 0))
        store.waitForWarmUp()
        benchmark.stopMeasurement()
        let progress = store.warmUp
        precondition(progress.loadedKeys == warmKeys, "loaded \(progress.loadedKeys)")
        benchmark.measurement(.custom("keys/s", polarity: .prefersLarger, useScalingFactor: false), Int(Double(progress.loadedKeys) / progress.seconds))
        store.close()
    } setup: {
        let path = temporaryPath()
        let store = try TieredStore(
            path: path, configuration: StoreConfiguration(memoryBudget: 512 << 20, diskBudget: 2 << 30, snapshotInterval: 0, warmStart: false))
        for i in 0..<warmKeys { try store.set(key(i), hundredBytes) }
        store.close()  // writes the hot-key snapshot
        return path
    } teardown: {
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: NSTemporaryDirectory())) ?? []
        where entry.hasPrefix("strata-bench-") {
            try? FileManager.default.removeItem(atPath: NSTemporaryDirectory() + "/" + entry)
        }
    }

    // Memory per entry is measured by the `memory-footprint` executable beside this target:
    // this framework's malloc interposer adds a header to every allocation.
}
