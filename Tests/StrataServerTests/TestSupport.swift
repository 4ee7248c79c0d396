import Foundation
import Logging
import NIOCore
import NIOEmbedded
import NIOPosix
import StrataCluster
import RESP
import StrataStore

@testable import StrataServer

/// A node without sockets: a real store in a temporary directory and the server around it.
final class TestNode: Sendable {
    let directory: String
    let store: TieredStore
    let server: Server

    /// `clustered`: a member of a cluster of one (so a connection may say STRATA.PEER).
    init(fsync: FsyncMode = .everysec, requirePass: String? = nil, clustered: Bool = false) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("strata-server-test-\(UUID().uuidString)").path
        var logger = Logger(label: "strata.test")
        logger.logLevel = .critical
        store = try TieredStore(
            path: directory,
            configuration: StoreConfiguration(
                memoryBudget: 8 << 20, diskBudget: 64 << 20, compressThreshold: 1024, fsync: fsync, snapshotInterval: 0),
            logger: logger)
        server = Server(
            store: store,
            configuration: ServerConfiguration(requirePass: requirePass, diskThreads: 1, dataDirectory: directory),
            metrics: ServerMetrics(), logger: logger,
            cluster: clustered
                ? Cluster(
                    configuration: ClusterConfiguration(nodeID: NodeID("n1")), group: MultiThreadedEventLoopGroup.singleton,
                    logger: logger) : nil)
    }

    /// A connection to this node on a testing channel, connected.
    func connect(maxOutstanding: Int = 4096) async throws -> NIOAsyncTestingChannel {
        let server = self.server
        let channel = try await NIOAsyncTestingChannel { channel in
            try channel.pipeline.syncOperations.addHandler(ClientHandler(server: server, maxOutstanding: maxOutstanding))
        }
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 40000)).get()
        return channel
    }

    func close() async {
        await server.shutdownPool()
        store.close()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// A RESP request: the words as an array of bulk strings.
func request(_ words: String...) -> ByteBuffer {
    var buffer = ByteBuffer()
    buffer.writeString("*\(words.count)\r\n")
    for word in words { buffer.writeString("$\(word.utf8.count)\r\n\(word)\r\n") }
    return buffer
}

/// Several requests in one buffer, as a pipelining client sends them.
func pipeline(_ requests: ByteBuffer...) -> ByteBuffer {
    var all = ByteBuffer()
    for var r in requests { all.writeBuffer(&r) }
    return all
}

/// Reads `count` replies from `channel`'s output, waiting for writes that come later (bounded).
/// Waits up to a minute: under the full parallel suite a sync can take seconds behind other
/// tests' disk writes.
func replies(_ count: Int, from channel: NIOAsyncTestingChannel, seconds: Double = 60) async throws -> [RESPReply] {
    var buffer = ByteBuffer()
    var parsed: [RESPReply] = []
    let deadline = Date().addingTimeInterval(seconds)
    while parsed.count < count {
        while let reply = try RESPReplyParser().next(&buffer) { parsed.append(reply) }
        if parsed.count >= count { break }
        if var chunk = try await channel.readOutbound(as: ByteBuffer.self) {
            buffer.writeBuffer(&chunk)
            continue
        }
        guard Date() < deadline else { throw TestTimeout(wanted: count, got: parsed.map(\.described)) }
        try await Task.sleep(for: .milliseconds(2))
    }
    return parsed
}

struct TestTimeout: Error, CustomStringConvertible {
    let wanted: Int
    let got: [String]
    var description: String { "wanted \(wanted) replies, got \(got)" }
}

extension RESPReply {
    /// The reply in a compact form for comparing: `+OK`, `-ERR …`, `:1`, `$value`, `nil`, `*[…]`.
    var described: String {
        switch kind {
        case .simpleString: return "+" + (string ?? "")
        case .error: return "-" + (string ?? "")
        case .integer: return ":" + (string ?? "")
        case .bulkString: return "$" + (string ?? "")
        case .null: return "nil"
        case .array, .set, .push: return "*[" + elements.map(\.described).joined(separator: ",") + "]"
        default: return String(buffer: raw)
        }
    }
}

/// Polls `condition` every 5 ms for at most `seconds`.
func eventually(seconds: Double = 60, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(5))
    }
    return try await condition()
}
