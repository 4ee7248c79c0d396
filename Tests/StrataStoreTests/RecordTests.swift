import Foundation
import Testing

@testable import StrataStore

@Suite struct RecordTests {
    let compressor = ValueCompressor()

    func encode(_ value: [UInt8], fullKey: [UInt8]? = nil, threshold: Int = 1024, expiry: Int64 = 0) -> [UInt8] {
        value.withUnsafeBytes { v in
            let key = fullKey ?? []
            return key.withUnsafeBytes { k in
                Record.encode(
                    value: v, fullKey: fullKey == nil ? nil : k, expiry: expiry,
                    version: Version(clock: 77 << 16 | 3, node: 9), stamp: 1234,
                    compressThreshold: threshold, compressor: compressor
                ).bytes
            }
        }
    }

    @Test func roundTripsSmallValue() throws {
        let record = encode(Array("hello".utf8), expiry: 42)
        try record.withUnsafeBytes { bytes in
            let header = try Record.header(bytes)
            #expect(header.expiry == 42)
            #expect(header.version == Version(clock: 77 << 16 | 3, node: 9))
            #expect(header.rawLength == 5)
            #expect(!header.flags.contains(.compressed))
            #expect(try Record.value(bytes, header, compressor: compressor) == Array("hello".utf8))
        }
        #expect(record.count == Record.headerSize + 5)
    }

    @Test func compressesLargeCompressibleValuesOnly() throws {
        let text = [UInt8](String(repeating: "strata caches things. ", count: 300).utf8)
        let record = encode(text)
        #expect(record.count < text.count / 4)
        try record.withUnsafeBytes { bytes in
            let header = try Record.header(bytes)
            #expect(header.flags.contains(.compressed))
            #expect(try Record.value(bytes, header, compressor: compressor) == text)
        }
        // Random bytes do not shrink: stored raw.
        var rng = SystemRandomNumberGenerator()
        let noise = (0..<4096).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let raw = encode(noise)
        let rawHeader = try raw.withUnsafeBytes { bytes throws(Record.DecodeError) in try Record.header(bytes) }
        #expect(!rawHeader.flags.contains(.compressed))
        // Below the threshold: never compressed.
        let small = encode([UInt8](repeating: 65, count: 1000))
        #expect(small.count == Record.headerSize + 1000)
    }

    @Test func carriesTheFullKeyOfLongKeys() throws {
        let key = [UInt8](repeating: 0x41, count: 2000)
        let record = encode(Array("v".utf8), fullKey: key)
        try record.withUnsafeBytes { bytes in
            let header = try Record.header(bytes)
            #expect(try Record.fullKey(bytes, header).map { [UInt8]($0) } == key)
            #expect(try Record.value(bytes, header, compressor: compressor) == Array("v".utf8))
        }
    }

    @Test func detectsEveryFlippedByte() throws {
        let record = encode(Array("some value bytes".utf8), expiry: 99)
        for i in 4..<record.count {
            var damaged = record
            damaged[i] ^= 0x10
            damaged.withUnsafeBytes { bytes in
                #expect(throws: Record.DecodeError.self) { _ = try Record.header(bytes) }
            }
        }
    }

    @Test func refusesNewerFormatsAndTruncation() {
        var record = encode(Array("x".utf8))
        record[0] = Record.formatVersion + 1
        record.withUnsafeBytes { bytes in
            #expect(throws: Record.DecodeError.newerFormat(Record.formatVersion + 1)) { _ = try Record.header(bytes) }
        }
        let short = Array(record.prefix(10))
        short.withUnsafeBytes { bytes in
            #expect(throws: Record.DecodeError.truncated) { _ = try Record.header(bytes) }
        }
    }
}

@Suite struct WriteAheadLogTests {
    @Test func replaysIntactFramesAndCutsATornTail() throws {
        try withTemporaryDirectory { path in
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            let log = try WriteAheadLog(directory: path)
            let compressor = ValueCompressor()
            func record(_ value: [UInt8]) -> [UInt8] {
                value.withUnsafeBytes {
                    Record.encode(
                        value: $0, fullKey: nil, expiry: 0, version: Version(clock: 1, node: 1), stamp: 0,
                        compressThreshold: 1 << 20, compressor: compressor
                    ).bytes
                }
            }
            var frames: [UInt8] = []
            WriteAheadLog.frame(.put, key: bytes("a"), record: record([1, 2, 3]), into: &frames)
            WriteAheadLog.frame(.delete, key: bytes("b"), record: nil, into: &frames)
            WriteAheadLog.frame(.clear, key: [], record: nil, into: &frames)
            WriteAheadLog.frame(.put, key: bytes("c"), record: record([9]), into: &frames)
            let intact = frames.count
            // A torn last frame: a header promising more than was written.
            WriteAheadLog.frame(.put, key: bytes("torn"), record: record([UInt8](repeating: 7, count: 100)), into: &frames)
            try log.append(Array(frames.prefix(intact + 20)))
            var seen: [(WriteAheadLog.Kind, [UInt8], [UInt8])] = []
            let count = try log.replay { seen.append(($0, $1, $2)) }
            #expect(count == 4)
            #expect(seen.map(\.0) == [.put, .delete, .clear, .put])
            #expect(seen[0].1 == bytes("a") && seen[0].2 == record([1, 2, 3]))
            #expect(seen[3].1 == bytes("c") && seen[3].2 == record([9]))
            let size = try FileManager.default.attributesOfItem(atPath: log.path)[.size] as? Int
            #expect(size == intact)
            // A flipped byte inside a frame stops the replay there.
            try log.reset()
            var damaged = Array(frames.prefix(intact))
            damaged[12] ^= 0xFF  // in the first frame's key length
            try log.append(damaged)
            #expect(try log.replay { _, _, _ in } == 0)
            // ...and so does a flipped byte inside a record (its own CRC).
            try log.reset()
            damaged = Array(frames.prefix(intact))
            damaged[30] ^= 0xFF
            try log.append(damaged)
            #expect(try log.replay { _, _, _ in } == 0)
            log.close()
        }
    }
}
