import Foundation
import Logging
import Testing

@testable import StrataCluster

/// Hints on disk, in a real temporary directory.
@Suite struct HintFileTests {
    private func withDirectory(_ body: (String) async throws -> Void) async rethrows {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("strata-hints-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try await body(path)
    }

    private var logger: Logger {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return logger
    }

    @Test func appendedHintsAreLoadedBackPerPeer() async {
        await withDirectory { dir in
            let writer = SerialWriter(logger: logger)
            let file = HintFile(dataDirectory: dir, writer: writer, logger: logger)
            file.append(Array("a".utf8), for: "n2")
            file.append(Array("b".utf8), for: "n2")
            file.append([0, 255, 13, 10], for: "node three")
            await writer.flush()
            let loaded = HintFile(dataDirectory: dir, writer: writer, logger: logger).load()
            #expect(loaded["n2"] == [Array("a".utf8), Array("b".utf8)])
            #expect(loaded["node three"] == [[0, 255, 13, 10]])
            #expect(writer.failedWrites == 0)
        }
    }

    @Test func aRewriteReplacesAndAnEmptyOneRemovesTheFile() async throws {
        try await withDirectory { dir in
            let writer = SerialWriter(logger: logger)
            let file = HintFile(dataDirectory: dir, writer: writer, logger: logger)
            file.append(Array("a".utf8), for: "n2")
            file.rewrite([Array("z".utf8)], for: "n2")
            file.append(Array("y".utf8), for: "n2")  // queued after the rewrite: kept
            await writer.flush()
            #expect(file.load()["n2"] == [Array("z".utf8), Array("y".utf8)])
            file.rewrite([], for: "n2")
            await writer.flush()
            #expect(file.load()["n2"] == nil)
            let left = try FileManager.default.contentsOfDirectory(atPath: dir + "/hints")
            #expect(left.isEmpty)
        }
    }

    @Test func aTornLastRecordIsIgnored() throws {
        let whole = HintFile.encode(Array("key".utf8))
        let torn = whole + HintFile.encode(Array("second".utf8)).dropLast(2)
        #expect(HintFile.decode(torn) == [Array("key".utf8)])
        #expect(HintFile.decode([]) == [])
    }

    @Test func aWriteThatFailsIsCountedAndTheNodeCarriesOn() async throws {
        try await withDirectory { dir in
            // A file where the hints directory should be: every append fails.
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            #expect(FileManager.default.createFile(atPath: dir + "/hints", contents: Data("x".utf8)))
            let writer = SerialWriter(logger: logger)
            let file = HintFile(dataDirectory: dir, writer: writer, logger: logger)
            file.append(Array("a".utf8), for: "n2")
            await writer.flush()
            #expect(writer.failedWrites == 1)
            #expect(file.load().isEmpty)
        }
    }
}
