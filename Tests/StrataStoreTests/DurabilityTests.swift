import Foundation
import Testing

@testable import StrataStore

/// Kills a writing process with SIGKILL and checks what survives.
@Suite(.serialized) struct DurabilityTests {
    static var helperPath: String {
        let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [dir, dir.deletingLastPathComponent(), dir.deletingLastPathComponent().deletingLastPathComponent()] {
            let path = candidate.appendingPathComponent("strata-store-writer").path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return dir.appendingPathComponent("strata-store-writer").path
    }

    /// Starts the writer, lets it acknowledge at least `minimumAcks` writes, kills it with SIGKILL,
    /// and returns the acknowledged write numbers.
    func runAndKill(path: String, fsync: FsyncMode, start: Int, minimumAcks: Int, valueBytes: Int) throws -> [Int] {
        let helper = Self.helperPath
        #expect(FileManager.default.isExecutableFile(atPath: helper), "helper binary missing at \(helper)")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: helper)
        process.arguments = [path, fsync.rawValue, String(start), "1000000", String(valueBytes)]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        var acks: [Int] = []
        var buffer = Data()
        let reader = pipe.fileHandleForReading
        let deadline = Date().addingTimeInterval(60)
        while acks.count < minimumAcks && Date() < deadline {
            let chunk = reader.availableData
            if chunk.isEmpty { break }
            buffer.append(chunk)
            while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffer[buffer.startIndex..<newline], as: UTF8.self)
                buffer.removeSubrange(buffer.startIndex...newline)
                if line.hasPrefix("ack "), let n = Int(line.dropFirst(4)) { acks.append(n) }
            }
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        // Acks printed before the kill are still in the pipe.
        buffer.append(reader.readDataToEndOfFile())
        for line in String(decoding: buffer, as: UTF8.self).split(separator: "\n") where line.hasPrefix("ack ") {
            if let n = Int(line.dropFirst(4)) { acks.append(n) }
        }
        #expect(process.terminationReason == .uncaughtSignal)
        return acks
    }

    @Test func sigkillUnderAlwaysLosesNoAcknowledgedWrite() throws {
        try withTemporaryDirectory { path in
            var allAcked: [Int] = []
            // Several kills at different moments; the directory must reopen every time.
            for (round, minimum) in [200, 50, 500].enumerated() {
                let acked = try runAndKill(
                    path: path, fsync: .always, start: round * 1_000_000, minimumAcks: minimum, valueBytes: 100 + round * 900)
                #expect(acked.count >= minimum)
                allAcked += acked
                let store = try openStore(path, warm: false)
                for i in allAcked {
                    let value = store.get(bytes("key:\(i)"))
                    #expect(value.map { Array($0.prefix(bytes("value:\(i):").count)) } == bytes("value:\(i):"), "lost acknowledged write \(i)")
                }
                store.close()
            }
        }
    }

    @Test func sigkillUnderEverysecLeavesAnOpenableDirectory() throws {
        try withTemporaryDirectory { path in
            let acked = try runAndKill(path: path, fsync: .everysec, start: 0, minimumAcks: 3000, valueBytes: 2000)
            let store = try openStore(path, warm: false)
            defer { store.close() }
            // Commits run continuously, so a process crash loses at most the last few milliseconds.
            var present = 0
            for i in acked where store.exists(bytes("key:\(i)")) { present += 1 }
            #expect(present >= acked.count - 1000)
            #expect(present > 0)
        }
    }
}
